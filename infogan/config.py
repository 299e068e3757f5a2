"""Typed configuration: one pydantic model per params.yaml section, its fields' types and bounds declared.

`build(ModelConfig, params["model"]["mnist"], "model.mnist")` checks a section once and returns a
frozen model whose attributes have the params keys' names: `train.lambda_cat` in params.yaml is
`config.train.lambda_cat` in code, in the checkpoint and in MLflow. Every bad value raises
`InfoGANError` with the full key and what is allowed (`describe`), so a run stops before any work.
The models have no default values: every value comes from params.yaml (pipeline/params.py), so
there is no second copy to drift. The sections of a dataset's raw source (`prepare.<dataset>`)
are declared beside the code that reads them, in infogan/data/.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from infogan.errors import InfoGANError

S = TypeVar("S", bound="Section")
MAX_SEED = 2**32 - 1  # the largest seed Lightning's seed_everything (NumPy's generator) takes

# The value types of params.yaml. Strict: YAML's `true` is no integer and "64" no number; a float
# field takes an integer (2 for 2.0) but never NaN or ±inf, which would pass every range check.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]
Bool = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]
PositiveInt = Annotated[Int, Field(gt=0)]
Count = Annotated[Int, Field(ge=0)]
PositiveFloat = Annotated[Float, Field(gt=0)]
Weight = Annotated[Float, Field(ge=0)]
Seed = Annotated[Int, Field(ge=0)]  # and at most MAX_SEED, checked by the section (`_check_seed`)


class Section(BaseModel):
    """One params.yaml section: every key required, no other key allowed, frozen once built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_dict(self) -> dict[str, Any]:
        """The section as params.yaml spells it: plain JSON-able values, tuples as lists."""
        return self.model_dump(mode="json")


class ModelConfig(Section):
    """Latent layout and network sizes: everything structural about one dataset's model
    (params section `model.<dataset>`; `model.mnist` is the InfoGAN paper's, appendix C.1)."""

    image_channels: PositiveInt
    image_size: PositiveInt
    noise_dim: Count
    # z ~ N(0, I), or U(-1, 1) per variable as in the paper authors' released code
    noise_prior: Literal["gaussian", "uniform"]
    # z is the prior's draw times this: the std of N(0, s^2), or U(-s, s). A small scale lets the
    # code dominate G's input (ClusterGAN, Mukherjee et al. 2019, draws z with std 0.1)
    noise_scale: PositiveFloat
    categorical: tuple[Int, ...]  # one entry per categorical code: its number of classes
    continuous: Count  # number of continuous codes
    continuous_prior: Literal["uniform", "gaussian"]
    g_fc: tuple[Int, ...]  # hidden FC widths before the reshape
    g_base_channels: PositiveInt  # channels of the first feature map
    g_base_size: PositiveInt  # its side
    g_upconv: tuple[Int, ...]  # 4x4 stride-2 up-convs before the last one to the image
    d_conv: tuple[Int, ...]  # 4x4 stride-2 convs
    d_fc: tuple[Int, ...]  # hidden FC widths after the convs
    q_hidden: PositiveInt
    # Q's Gaussian over each continuous code: its std is learned per image, or fixed at 1 (the
    # paper authors' released code). A learned std scales the code's gradient by 1/std^2.
    q_continuous_std: Literal["learned", "fixed"]
    # on D's trunk and D head (replacing their BN), as in the hinge + spectral-norm option of the
    # Lightning InfoGAN this project began from (docs/params.md)
    spectral_norm: Bool

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        for key in ("categorical", "g_fc", "g_upconv", "d_conv", "d_fc"):
            if any(v <= 0 for v in getattr(self, key)):
                raise ValueError(f"every entry of {key} must be a positive integer, got {list(getattr(self, key))}")
        if any(k < 2 for k in self.categorical):
            raise ValueError(f"categorical codes need at least 2 classes each, got {list(self.categorical)}")
        if not self.categorical and self.continuous == 0:
            raise ValueError("the model has no latent code: set categorical and/or continuous")
        generated = self.g_base_size * 2 ** (len(self.g_upconv) + 1)
        if generated != self.image_size:
            raise ValueError(
                f"g_base_size {self.g_base_size} doubled by {len(self.g_upconv) + 1} up-convs gives "
                f"{generated}px, but image_size is {self.image_size}"
            )
        if self.image_size % 2 ** len(self.d_conv):
            raise ValueError(f"image_size {self.image_size} is not divisible by 2**len(d_conv)")
        return self

    @property
    def code_dim(self) -> int:
        return sum(self.categorical) + self.continuous

    @property
    def latent_dim(self) -> int:
        return self.noise_dim + self.code_dim


def _check_seed(seed: int) -> None:
    """A seed's upper bound (its lower one, 0, is the field's type)."""
    if seed > MAX_SEED:
        raise ValueError(f"seed must be at most {MAX_SEED} (NumPy's largest seed), got {seed}")


Recipe = Literal["paper", "improved"]


class TrainConfig(Section):
    """The objective, the optimizers and the run (params section `train`; InfoGAN paper section 7
    and appendix C.1). The arguments of the Lightning InfoGAN this project began from map onto
    these keys (docs/params.md)."""

    seed: Seed
    batch_size: PositiveInt
    batches_per_epoch: PositiveInt
    # one number, or one per recipe in params.yaml ({improved: 20, paper: 120}) so that `recipe`
    # alone switches to that recipe's own length; here it is the number the chosen recipe trains for
    max_epochs: PositiveInt
    lr_d: PositiveFloat
    lr_g: PositiveFloat
    beta1: Weight  # and below 1
    beta2: Weight  # and below 1
    lambda_cat: Weight
    lambda_cont: Weight
    adversarial_loss: Literal["bce", "hinge"]
    # paper: the InfoGAN objective alone; improved: plus the terms of the section `improved`
    recipe: Recipe
    # a NaN or infinite loss: stop the run (naming the iteration, the losses and any non-finite
    # parameters; a checkpoint written before it is kept), or skip that optimizer step and go on (this
    # reads every loss back every step)
    on_nonfinite: Literal["stop", "skip"]
    # iterations between saves of the whole training state, which an interrupted run resumes from
    checkpoint_every_n_steps: PositiveInt
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"]
    # per node: auto, or a count (Lightning's -1 for "all" is auto here)
    devices: Annotated[Int, Field(ge=1)] | Literal["auto"]
    # Lightning's strategy. auto: one process on one device, DDP across several devices or nodes; ddp and
    # its Lightning name ddp_find_unused_parameters_true: DDP with find_unused_parameters (infogan/training/
    # trainer.py says why). ddp_spawn and ddp_fork are not offered: they train in processes started from the
    # stage's, which then has neither the training's history nor its model to write (both failed when tried)
    strategy: Literal["auto", "ddp", "ddp_find_unused_parameters_true"]
    num_nodes: PositiveInt  # machines; each runs `devices` processes
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"]  # auto: infogan/training/hardware.py
    compile: Bool | Literal["auto"]  # torch.compile the networks; auto: infogan/training/hardware.py
    log_every_n_steps: PositiveInt
    sample_every_n_epochs: PositiveInt
    eval_batch_size: PositiveInt

    @model_validator(mode="before")
    @classmethod
    def _recipe_length(cls, train: Any) -> Any:
        """`max_epochs` made one number: per recipe, both lengths are checked whichever recipe runs;
        an unknown or missing recipe is left for the recipe's own check to name."""
        if not isinstance(train, Mapping) or not isinstance(train.get("max_epochs"), Mapping):
            return train
        lengths = train["max_epochs"]
        recipes = typing.get_args(Recipe)
        if set(lengths) != set(recipes):
            raise InfoGANError(
                f"train.max_epochs per recipe must give one length for each of {', '.join(recipes)}, "
                f"got {', '.join(map(str, lengths)) or 'none'}"
            )
        for recipe, epochs in lengths.items():
            if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
                raise InfoGANError(f"train.max_epochs.{recipe} = {epochs!r} is invalid: it must be a positive integer")
        # an unknown recipe takes either length here, so that the error is the recipe's own
        return {**train, "max_epochs": lengths.get(train.get("recipe"), lengths[recipes[0]])}

    @model_validator(mode="after")
    def _bounded(self) -> TrainConfig:
        _check_seed(self.seed)
        for key in ("beta1", "beta2"):
            if getattr(self, key) >= 1:
                raise ValueError(f"{key} must be in [0, 1), got {getattr(self, key)}")
        return self


class ImprovedConfig(Section):
    """What `train.recipe: improved` adds to the paper's objective (params section `improved`).

    Its terms on real images ask Q's categorical code to ignore nuisances (infogan/model/augment.py:
    a stretch, a rotation, a shift and a stroke-thickness change, which a digit's identity does not
    depend on) and to use its classes equally often. docs/model.md, "The improved recipe", has the
    sources; docs/digits.md the ablation.
    """

    # lambda of the categorical information term on transformed fakes: Q must still read the
    # sampled class from T(G(z, c)), so G cannot signal the class by slant or thickness alone
    augmented_information: Weight
    # the generated images (each batch's first ones) T(G(z, c)) is drawn and read on for that term, in
    # D's step and G's: each is a pass of D's trunk, as costly as the fake's own; 0: the whole batch
    augmented_information_rows: Count
    # weight of KL(Q(c | x) || Q(c | T(x))) on real images, the first held fixed: Q's class for a
    # real digit must not change under T (self-augmented training)
    real_consistency: Weight
    # weight of -I(c(x); c(T(x))) on real images (IIC): Q's class must survive T, and the classes must
    # be used equally often (infogan/model/losses.py, categorical_mutual_information)
    real_information: Weight
    # IMSAT's entropy terms on real images: + real_entropy * H(c | x) (confident classes) and
    # - real_marginal_entropy * H(c) (classes used equally often); IMSAT's weights are 0.1 and 0.4
    real_entropy: Weight
    real_marginal_entropy: Weight
    # weight of SCAN's self-labelling on real images: the cross-entropy of Q's class of T(x) (or of
    # T(x') with neighbours) against Q's class of x, on the rows where that class's probability is at
    # least self_label_threshold, each class weighing the same (infogan/model/losses.py,
    # categorical_self_label); 0: not computed
    self_label: Weight
    self_label_threshold: Annotated[Float, Field(gt=0, le=1)]
    # weight of virtual adversarial training on real images (IMSAT's VAT): KL(Q(c | x) || Q(c | x + r)),
    # the first held fixed, r the perturbation of its norm that changes Q's class fastest
    # (infogan/model/losses.py, categorical_virtual_adversarial); 0: not computed
    real_vat: Weight
    # r's norm as a share of each image's distance to the neighbour it is compared with this epoch
    # (IMSAT takes 0.25 of the distance to the 10th nearest); needs neighbours > 0
    real_vat_radius: Annotated[Float, Field(gt=0)]
    # with real_vat: the iterations before the term starts (it is 0 until then): a perturbation
    # towards the nearest class boundary, while the classes are still forming, can stall them;
    # 0: from the first
    real_vat_start: Count
    # whether the consistency, self-labelling and virtual adversarial terms take their target, Q's
    # class of each real image, from the weights' moving average (a mean teacher, Tarvainen and
    # Valpola, NeurIPS 2017) rather than from the Q being trained; needs ema_decay > 0
    real_teacher: Bool
    # with real_teacher: the iterations before the teacher takes over, the live Q giving the targets
    # until then (an average of weights that have not yet learned the classes is no reader of them);
    # 0: from the first
    real_teacher_start: Count
    # weight of the dependence between the continuous codes Q reads from real images, which the
    # prior draws independently: their squared correlations and those of their squares
    # (infogan/model/losses.py, continuous_dependence); 0: not computed
    real_continuous_dependence: Weight
    # weight of the same dependence within each class Q reads from the real images (its first
    # categorical code's most likely class), weighted by the classes' counts (infogan/model/losses.py,
    # continuous_class_dependence); 0: not computed
    real_continuous_class_dependence: Weight
    # weight of how far each continuous code Q reads from real images is from spread as its prior:
    # the squared 1-D Wasserstein distance (infogan/model/losses.py, continuous_marginal_distance);
    # 0: not computed
    real_continuous_marginal: Weight
    rotation_deg: Weight  # T rotates by up to this many degrees either way
    scale: Weight  # stretches each axis by a factor in 1 ± this
    shift_px: Weight  # and shifts by up to this many pixels on each axis
    thickness: Bool  # and erodes or dilates the strokes by a 3x3 minimum or maximum
    # with k > 0, the consistency and information terms compare x with T(x'), x' one of x's k nearest
    # training images in pixel space (infogan/data/neighbours.py), not with T(x); 0: with T(x)
    neighbours: Count
    # iterations over which the categorical information terms in D's step, which teach Q the class of
    # generated images, rise from weight 0 to 1 (G's step has them whole); 0: whole from the start
    fake_class_warmup: Count
    # weight of the continuous codes' squared mixed second derivative d2G/(dc_i dc_j) in G's step, on
    # continuous_rows latents (infogan/model/losses.py, continuous_mixed_derivatives); 0: not computed
    continuous_hessian: Weight
    # weight of the same mixed derivative divided by the two codes' squared first derivatives dG/dc_i
    # and dG/dc_j (continuous_mixed_derivatives with relative=True): a code cannot lower it by
    # changing the image less; 0: not computed
    continuous_hessian_relative: Weight
    # weight of the squared cosine between the continuous codes' effects on the image, dG/dc_i and
    # dG/dc_j, in G's step, on continuous_rows latents (infogan/model/losses.py,
    # continuous_effect_overlap; OroJaR's orthogonal Jacobians); 0: not computed
    continuous_orthogonal: Weight
    # weight of the size of the mean over latents of the cosine between the continuous codes' effects
    # on the image, in G's step, on continuous_rows latents (infogan/model/losses.py,
    # continuous_shared_effect): overlaps that change sign from latent to latent cancel, a share of
    # another code's change made the same way everywhere does not; 0: not computed
    continuous_shared_effect: Weight
    # weight of max(0, -cos) between each continuous code's effect on the image, averaged over pixel
    # blocks (continuous_class_agreement_pool), at a latent and at the same latent drawn as another
    # class, in G's step, on continuous_rows latents (infogan/model/losses.py,
    # continuous_class_disagreement): a code must not move one digit's ink the opposite way from
    # another's; 0: not computed
    continuous_class_agreement: Weight
    # the side, in pixels, of the blocks each effect is averaged over for continuous_class_agreement
    continuous_class_agreement_pool: PositiveInt
    # the latents of each batch (its first ones) that G's terms on the continuous codes' effects
    # (continuous_hessian, continuous_hessian_relative, continuous_orthogonal, continuous_shared_effect,
    # continuous_class_agreement), continuous_cross_reading and continuous_hold are found on; their
    # generator passes grow with it (code_effects: 4 a pair of codes, twice with the class term)
    continuous_rows: PositiveInt
    # standard deviation of Gaussian noise added to every pixel (images in [-1, 1]) of the generated
    # images Q reads the continuous codes from for G's information term, in place of the clean ones;
    # Q learns from both in D's step. A code earns only as much as its effect stands out of the
    # noise, so a faint effect Q could read exactly earns little; 0: off
    continuous_read_noise: Weight
    # weight, in D's step, of how far Q's reading of each continuous code moves when only the other
    # continuous codes are drawn anew (z and the categorical codes kept), on continuous_rows latents
    # (infogan/model/losses.py, continuous_cross_reading): Q must read each code from its own change,
    # so G is not paid for a code that also makes a little of another's change; 0: not computed
    continuous_cross_reading: Weight
    # weight of InfoGAN-CR's contrastive term: a pair head told two generated images that share one
    # code's value (the others and z drawn anew) must name that code, and G must make it easy; in both
    # steps, on CONTRASTIVE_ROWS pairs (infogan/model/codes.py, share_one_code); 0: not computed
    contrastive: Weight
    # the codes a pair may share: "all" (c1, c2 and c3) or "continuous" (c2 and c3; pairs never share
    # the categorical code, so the term asks nothing of the digits)
    contrastive_codes: Literal["all", "continuous"]
    # iterations before G's step is paid the contrastive term (InfoGAN-CR switches it on after
    # InfoGAN has trained a while); the pair head learns from the first iteration; 0: from the first
    contrastive_start: Count
    # each continuous code's information term weighs this times the one before: lambda_cont for c2,
    # lambda_cont * ratio for c3, * ratio^2 for c4, in D's step and G's. With equal weights (1) the
    # objective stays the same when two codes swap or mix what they control; unequal ones break that tie
    continuous_weight_ratio: PositiveFloat
    # iterations between the starts of successive continuous codes: code k (c2 is 0) is held at 0, and
    # its information term unpaid, for its first k * this iterations, then drawn from its prior. The
    # first code learns the largest factor it can alone; each later one starts beside codes that
    # already control theirs, which fixes the rotation equal weights leave free; 0: all from the first
    continuous_stagger: Count
    # iterations for which every continuous code is held at 0 and unpaid before the first (c2) starts;
    # the stagger counts from then. The categorical code learns the digits first, so that the first
    # continuous code learns a change within them: started at once, c2 changed which digit G drew on
    # 61% of latents at iteration 500 (docs/digits.md, round 29); 0: from the first
    continuous_start: Count
    # with continuous_stagger: weight (times lambda_cont) of the information of the codes started
    # before the newest one, as read by a frozen copy of D's trunk and Q's head taken when the newest
    # started, in G's step. The copy reads each earlier code from what it controlled alone, so a later
    # code that also moves that makes the copy misread it, and costs G; 0: off
    continuous_anchor: Weight
    # the generated images (each batch's first ones) the anchor reads, a pass of its trunk in G's
    # step; 0: the whole batch
    continuous_anchor_rows: Count
    # with continuous_anchor: the iteration at which the anchor is taken again, from then on reading
    # every code started, the newest too, so that each code is held to what it controls then (a code
    # starting later takes it again as before); 0: taken only when each code starts
    continuous_anchor_retake: Count
    # with continuous_anchor_retake: from the retake on, G is paid the continuous codes' information
    # only as the retaken anchor reads it, no longer as the live Q does (Q still learns to read them
    # in D's step). A live reader can learn to read a code through whatever else moves with it, and
    # then pays G to move that too; a frozen one cannot learn that; false: both pay G
    continuous_anchor_alone: Bool
    # with continuous_stagger: weight, in G's step, of how far each code started before the newest has
    # turned its effect on the image from the change it made when the newest started, as a frozen copy
    # of G taken then makes it (1 - cos over pixel blocks of continuous_hold_pool, on continuous_rows
    # latents; infogan/model/losses.py, continuous_effect_drift). The anchor reads an earlier code as Q
    # read it then; a change added beside it (a lean beside a stroke) does not trouble that reading,
    # and this term pays for it; 0: off
    continuous_hold: Weight
    # the side, in pixels, of the blocks each effect is averaged over for continuous_hold
    continuous_hold_pool: PositiveInt
    # iterations between turns of the continuous codes, from when every code has started: each turn
    # finds the rotation of the codes whose readings by Q of real training images are least dependent
    # within Q's own classes, and re-expresses G's and Q's weights for it (the same images, the codes
    # turned). The information term pays any turn of two codes alike; factors whose spreads differ
    # from class to class are independent within every class only along their own axes; 0: off
    continuous_turn_every: Count
    # the networks the run evaluates, samples and saves are an exponential moving average of the
    # trained ones, moved this far toward them after every iteration: average = decay * average +
    # (1 - decay) * trained, from the first iteration (infogan/training/callbacks.py, WeightAverage;
    # StyleGAN's G_ema, here over G, D and Q); 0: the trained networks themselves
    ema_decay: Annotated[Float, Field(ge=0, lt=1)]
    # the iteration after which both learning rates (train.lr_d, train.lr_g) fall linearly, step by
    # step, from their values to 0 after the run's last iteration, to leave less step for the codes'
    # late drift (it did not keep c3 from leaning: docs/digits.md, round 36); 0: constant to the end
    lr_decay_start: Count
    # when training ends, turn the continuous codes to the rotation at which they act most separately
    # on the image (least mixed second derivative; infogan/model/losses.py, least_mixed_turn). With
    # model.<dataset>.continuous_prior gaussian only: under that prior a turn changes neither the images
    # nor what Q reads, so the objective leaves the codes' axes free; false: the axes training left
    continuous_final_turn: Bool

    @model_validator(mode="after")
    def _anchored_codes_start_apart(self) -> ImprovedConfig:
        if self.continuous_anchor > 0 and self.continuous_stagger == 0:
            raise ValueError(
                "continuous_anchor needs continuous_stagger > 0: the anchor is the reader taken when a later code "
                "starts, and with no stagger every code starts at once"
            )
        if self.real_vat > 0 and self.neighbours == 0:
            raise ValueError(
                "real_vat needs neighbours > 0: its perturbation's norm is a share of each image's distance to "
                "the neighbour it is compared with"
            )
        if self.real_vat_start > 0 and self.real_vat == 0:
            raise ValueError("real_vat_start needs real_vat > 0: it is the iteration the term starts after")
        if self.real_teacher and self.ema_decay == 0:
            raise ValueError("real_teacher needs ema_decay > 0: the teacher is the weights' moving average")
        if self.real_teacher_start > 0 and not self.real_teacher:
            raise ValueError("real_teacher_start needs real_teacher: it is the iteration the teacher takes over")
        if self.continuous_anchor_retake > 0 and self.continuous_anchor == 0:
            raise ValueError("continuous_anchor_retake needs continuous_anchor > 0: it retakes the anchor")
        if self.continuous_hold > 0 and self.continuous_stagger == 0:
            raise ValueError(
                "continuous_hold needs continuous_stagger > 0: G's copy is taken when a later code starts, and "
                "with no stagger every code starts at once"
            )
        if self.continuous_hold > 0 and self.continuous_turn_every > 0:
            raise ValueError(
                "continuous_hold and continuous_turn_every cannot be combined: a turn re-expresses G's weights for "
                "turned codes, and the held copy of G would still make the codes' changes unturned"
            )
        if self.continuous_anchor_alone and self.continuous_anchor_retake == 0:
            raise ValueError(
                "continuous_anchor_alone needs continuous_anchor_retake > 0: it is the retaken anchor that pays alone"
            )
        return self


class RenderConfig(Section):
    """Traversal GIFs and evaluation after training (params section `render`)."""

    continuous_range: tuple[Float, ...]
    continuous_frames: PositiveInt
    samples_per_row: PositiveInt
    scale: PositiveInt
    frame_ms: PositiveInt
    seed: Seed
    mi_samples: PositiveInt
    factor_samples: PositiveInt  # latents per continuous-code sweep (infogan/evaluation/factors.py)
    # a continuous code's GIF is named after the property it controls (slant.gif) only when its
    # |Spearman rho| with it reaches min and with every property another code is named for stays at
    # most max_other (infogan/evaluation/factors.factor_names); otherwise continuous_<j>.gif
    factor_name_min_rho: Weight
    factor_name_max_other_rho: Weight
    eval_batch_size: PositiveInt
    # the CNN that reads which digit each class of c1 draws (infogan/evaluation/digit_classifier.py), for digits
    classifier_epochs: PositiveInt
    classifier_batch_size: PositiveInt
    classifier_images: PositiveInt  # the first this many of the training split train it
    purity_samples: PositiveInt  # generated images per class of c1

    @model_validator(mode="after")
    def _bounded(self) -> RenderConfig:
        _check_seed(self.seed)
        if len(self.continuous_range) != 2 or self.continuous_range[0] >= self.continuous_range[1]:
            raise ValueError(f"continuous_range must be [low, high] with low < high, got {list(self.continuous_range)}")
        return self


class TrackingConfig(Section):
    """Where MLflow records runs (params section `tracking`; pipeline/tracking.py)."""

    uri: Annotated[Text, Field(min_length=1)]  # MLFLOW_TRACKING_URI, when set, wins
    artifact_root: Annotated[Text, Field(min_length=1)]


class TrainingConfig(Section):
    """What one training reads: the sections `model.<dataset>`, `train` and `improved` (which the
    paper recipe does not read: None there). A checkpoint's hyperparameters are these, as plain values."""

    model: ModelConfig
    train: TrainConfig
    improved: ImprovedConfig | None

    @classmethod
    def of(cls, model: Any, train: Any, improved: Any = None) -> TrainingConfig:
        """From the three sections, each a config or a mapping as params.yaml spells it."""
        model = model if isinstance(model, ModelConfig) else build(ModelConfig, model, "model")
        train = train if isinstance(train, TrainConfig) else build(TrainConfig, train, "train")
        if improved is not None and not isinstance(improved, ImprovedConfig):
            improved = build(ImprovedConfig, improved, "improved")
        if improved is None and train.recipe == "improved":
            raise InfoGANError("the improved recipe needs its settings (the params section improved)")
        if improved is not None and improved.continuous_final_turn and model.continuous_prior != "gaussian":
            raise InfoGANError(
                "improved.continuous_final_turn needs model.<dataset>.continuous_prior: gaussian, got "
                f"{model.continuous_prior}: only under a Gaussian prior does a turn of the codes leave the images "
                "G draws as they were"
            )
        return cls(model=model, train=train, improved=improved)

    def improved_terms(self) -> ImprovedConfig | None:
        """The improved recipe's terms when they apply, else None (the paper's objective alone). The
        one place that decides: with `train.recipe: improved`, and a categorical code for them to act on."""
        return self.improved if self.train.recipe == "improved" and self.model.categorical else None


# ---------------------------------------------------------------- building a section, and its errors


def build(cls: type[S], mapping: Any, section: str, context: dict[str, Any] | None = None) -> S:
    """`cls` from `mapping`, the params section named `section`, which gives every key.

    Unknown keys, missing keys, wrong types and out-of-range values all raise `InfoGANError` with
    the full key (`section.key`) and the allowed values. `context` reaches the validators.
    """
    if not isinstance(mapping, Mapping):
        raise InfoGANError(f"{section} must be a mapping of keys to values, got {mapping!r}")
    try:
        return cls.model_validate(dict(mapping), context=context)
    except ValidationError as err:
        raise InfoGANError(describe(err, cls, section)) from None


def describe(err: ValidationError, cls: type[BaseModel], section: str) -> str:
    """pydantic's first error as one line in the project's words: the full key (list entries as
    `key[i]`), the value given and what is allowed."""
    error = err.errors(include_url=False)[0]
    loc = list(error["loc"])
    owner, hint, path = _walk(cls, loc)
    key = (section + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)).lstrip(".")
    kind, value = error["type"], error.get("input")
    if kind == "missing":  # a whole section is missing from the file, a key from its section
        return f"{key} is missing from {'params.yaml' if _section_type(hint) else 'the params'}"
    if kind == "extra_forbidden":
        keys = ", ".join(owner.model_fields)
        parent = key.rsplit(".", 1)[0] if "." in key else "params.yaml"
        return f"unknown key {key}; the keys of {parent} are: {keys}"
    if kind in ("value_error", "assertion_error"):  # a check across fields, by the section's validator
        return f"{key}: {error['ctx']['error']}"
    if kind == "model_type" or kind == "dict_type":
        return f"{key} must be a mapping of keys to values, got {value!r}"
    if kind == "finite_number" or (kind == "float_type" and isinstance(value, int) and not isinstance(value, bool)):
        return f"{key} = {value!r} is invalid: it must be a finite number"  # NaN, ±inf, or too large for a float
    ctx = error.get("ctx", {})
    for bound, words in (("gt", "greater than"), ("ge", "at least"), ("lt", "less than"), ("le", "at most")):
        if bound in ctx:
            shown = float(value) if isinstance(ctx[bound], float) else value  # as the float field holds it
            return f"{key} = {shown!r} is invalid: it must be {words} {ctx[bound]:g}"
    field = owner.model_fields.get(path[-1]) if path and isinstance(path[-1], str) else None
    if kind == "string_too_short" or (
        kind == "string_type" and field and any(getattr(m, "min_length", 0) for m in field.metadata)
    ):
        return f"{key} = {value!r} is invalid: it must be a non-empty string"
    return f"{key} = {value!r} is invalid: it must be {_expected(hint)}"


def _walk(cls: type[BaseModel], loc: list) -> tuple[type[BaseModel], Any, list]:
    """Follow an error's location through the models: the model that owns the last key, the
    declared type at the location, and the location as params keys (a union's member tags, which
    pydantic adds, left out)."""
    owner, hint, path = cls, cls, []
    for part in loc:
        section = _section_type(hint)
        if section is not None and part in section.model_fields:
            owner, hint = section, section.model_fields[part].annotation
            path.append(part)
        elif section is not None and part == section.__name__:  # the member tag of `Section | None`
            continue
        elif isinstance(part, int) and typing.get_origin(_bare(hint)) is tuple:
            hint = typing.get_args(_bare(hint))[0]
            path.append(part)
        elif section is not None:  # an unknown key
            owner = section
            path.append(part)
        else:
            break  # a union member's tag, e.g. 'int' or "literal['auto']": the field is described whole
    return owner, hint, path


def _section_type(hint: Any) -> type[BaseModel] | None:
    """The section model `hint` declares, alone or as `Section | None`; None for a plain value."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
    return next((o for o in options if isinstance(o, type) and issubclass(o, BaseModel)), None)


def _bare(hint: Any) -> Any:
    """The type under `Annotated[...]`."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _expected(hint: Any) -> str:
    """A declared type in words: 'an integer', 'one of 'a', 'b'', 'a list of a number', ..."""
    hint = _bare(hint)
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {_expected(typing.get_args(hint)[0])}"
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in typing.get_args(hint))
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
