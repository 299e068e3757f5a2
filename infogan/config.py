"""Typed configuration: frozen dataclasses built from params sections and checked once.

`from_mapping(ModelConfig, params["model"]["mnist"], "model.mnist")` turns a params section into a
frozen dataclass. Every bad value raises `InfoGANError` naming the full key and what is allowed, so
a run stops before any work is done. The dataclasses have types and bounds but no default values:
every value comes from params.yaml (pipeline/params.py), so there is no second copy to drift.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union

from infogan.errors import InfoGANError

C = TypeVar("C")
MAX_SEED = 2**32 - 1  # the largest seed Lightning's seed_everything (NumPy's generator) takes


def _bounded(minimum: float, *, exclusive: bool = False) -> Any:
    """A dataclass field with a lower bound, checked by `from_mapping`."""
    return field(metadata={"min": minimum, "exclusive": exclusive})


def positive() -> Any:
    return _bounded(0, exclusive=True)


def non_negative() -> Any:
    return _bounded(0)


@dataclass(frozen=True)
class ModelConfig:
    """Latent layout and network sizes: everything structural about one dataset's model
    (params section `model.<dataset>`; `model.mnist` is the InfoGAN paper's, appendix C.1)."""

    image_channels: int = positive()
    image_size: int = positive()
    noise_dim: int = non_negative()
    # z ~ N(0, I), or U(-1, 1) per variable as in the paper authors' released code
    noise_prior: Literal["gaussian", "uniform"]
    # z is the prior's draw times this: the std of N(0, s^2), or U(-s, s). A small scale lets the
    # code dominate G's input (ClusterGAN, Mukherjee et al. 2019, draws z with std 0.1)
    noise_scale: float = positive()
    categorical: tuple[int, ...]  # one entry per categorical code: its number of classes
    continuous: int = non_negative()  # number of continuous codes
    continuous_prior: Literal["uniform", "gaussian"]
    g_fc: tuple[int, ...]  # hidden FC widths before the reshape
    g_base_channels: int = positive()  # channels of the first feature map
    g_base_size: int = positive()  # its side
    g_upconv: tuple[int, ...]  # 4x4 stride-2 up-convs before the last one to the image
    d_conv: tuple[int, ...]  # 4x4 stride-2 convs
    d_fc: tuple[int, ...]  # hidden FC widths after the convs
    q_hidden: int = positive()
    # Q's Gaussian over each continuous code: its std is learned per image, or fixed at 1 (the
    # paper authors' released code). A learned std scales the code's gradient by 1/std^2.
    q_continuous_std: Literal["learned", "fixed"]
    spectral_norm: bool  # on D's trunk and D head (replacing their BN), as in the seed's hinge option

    def __post_init__(self) -> None:
        for key in ("categorical", "g_fc", "g_upconv", "d_conv", "d_fc"):
            if any(v <= 0 for v in getattr(self, key)):
                raise InfoGANError(f"every entry of {key} must be a positive integer, got {list(getattr(self, key))}")
        if any(k < 2 for k in self.categorical):
            raise InfoGANError(f"categorical codes need at least 2 classes each, got {list(self.categorical)}")
        if not self.categorical and self.continuous == 0:
            raise InfoGANError("the model has no latent code: set categorical and/or continuous")
        generated = self.g_base_size * 2 ** (len(self.g_upconv) + 1)
        if generated != self.image_size:
            raise InfoGANError(
                f"g_base_size {self.g_base_size} doubled by {len(self.g_upconv) + 1} up-convs gives "
                f"{generated}px, but image_size is {self.image_size}"
            )
        if self.image_size % 2 ** len(self.d_conv):
            raise InfoGANError(f"image_size {self.image_size} is not divisible by 2**len(d_conv)")

    @property
    def code_dim(self) -> int:
        return sum(self.categorical) + self.continuous

    @property
    def latent_dim(self) -> int:
        return self.noise_dim + self.code_dim


@dataclass(frozen=True)
class OptimConfig:
    """The objective and the optimizers (InfoGAN paper section 7 and appendix C.1)."""

    lr_d: float = positive()
    lr_g: float = positive()
    beta1: float = non_negative()
    beta2: float = non_negative()
    lambda_cat: float = non_negative()
    lambda_cont: float = non_negative()
    adversarial_loss: Literal["bce", "hinge"]
    # paper: the InfoGAN objective alone; improved: plus the terms set in ImprovedConfig
    recipe: Literal["paper", "improved"]
    # a NaN or infinite loss: stop the run (naming the iteration, the losses and any non-finite
    # parameters; a checkpoint written before it is kept), or skip that optimizer step and go on (this
    # reads every loss back every step)
    on_nonfinite: Literal["stop", "skip"]

    def __post_init__(self) -> None:
        for key in ("beta1", "beta2"):
            if getattr(self, key) >= 1:
                raise InfoGANError(f"{key} must be in [0, 1), got {getattr(self, key)}")


@dataclass(frozen=True)
class ImprovedConfig:
    """What `train.recipe: improved` adds to the paper's objective (params section `improved`).

    Its terms on real images ask Q's categorical code to ignore nuisances (infogan/augment.py: a
    stretch, a rotation, a shift and a stroke-thickness change, which a digit's identity does not
    depend on) and to use its classes equally often. docs/model.md, "The improved recipe", has the
    sources; docs/digits.md the ablation.
    """

    # lambda of the categorical information term on transformed fakes: Q must still read the
    # sampled class from T(G(z, c)), so G cannot signal the class by slant or thickness alone
    augmented_information: float = non_negative()
    # weight of KL(Q(c | x) || Q(c | T(x))) on real images, the first held fixed: Q's class for a
    # real digit must not change under T (self-augmented training)
    real_consistency: float = non_negative()
    # weight of -I(c(x); c(T(x))) on real images (IIC): Q's class must survive T, and the classes must
    # be used equally often (infogan/losses.py, categorical_mutual_information)
    real_information: float = non_negative()
    # IMSAT's entropy terms on real images: + real_entropy * H(c | x) (confident classes) and
    # - real_marginal_entropy * H(c) (classes used equally often); IMSAT's weights are 0.1 and 0.4
    real_entropy: float = non_negative()
    real_marginal_entropy: float = non_negative()
    # with k > 0, the consistency and information terms compare x with T(x'), x' one of x's k nearest
    # training images in pixel space (infogan/neighbours.py), not with T(x); 0: with T(x)
    neighbours: int = non_negative()
    # iterations over which the categorical information terms in D's step, which teach Q the class of
    # generated images, rise from weight 0 to 1 (G's step has them whole); 0: whole from the start
    fake_class_warmup: int = non_negative()
    rotation_deg: float = non_negative()  # T rotates by up to this many degrees either way
    scale: float = non_negative()  # stretches each axis by a factor in 1 ± this
    shift_px: float = non_negative()  # and shifts by up to this many pixels on each axis
    thickness: bool  # and erodes or dilates the strokes by a 3x3 minimum or maximum


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _finite_float(value: int | float) -> float | None:
    """`value` as a float, or None if it is NaN, infinite, or an integer too large for a float."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Return `value` as type `hint`, or raise naming `key` and what is allowed."""
    origin = typing.get_origin(hint)
    ok = False
    if origin is Literal:
        ok = value in typing.get_args(hint) and not isinstance(value, bool)
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            elem = typing.get_args(hint)[0]
            return tuple(_coerce(f"{key}[{i}]", v, elem) for i, v in enumerate(value))
    elif origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(key, value, option)
            except InfoGANError:
                pass
    elif hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            number = _finite_float(value)
            if number is None:  # NaN would pass every range check (its comparisons are all false)
                raise InfoGANError(f"{key} = {value!r} is invalid: it must be a finite number")
            value = number
    elif hint is str:
        ok = isinstance(value, str)
    if not ok:
        raise InfoGANError(f"{key} = {value!r} is invalid: it must be {_describe(hint)}")
    return value


def from_mapping(cls: type[C], mapping: Mapping[str, Any], section: str) -> C:
    """Build the dataclass `cls` from `mapping`, the params section named `section`, which gives every key.

    Unknown keys, missing keys, wrong types and out-of-range values all raise `InfoGANError` with
    the full key (`section.key`) and the allowed values.
    """
    if not isinstance(mapping, Mapping):
        raise InfoGANError(f"{section} must be a mapping of keys to values, got {mapping!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise InfoGANError(f"unknown key {section}.{unknown[0]}; the keys of {section} are: {', '.join(fields)}")
    missing = [name for name in fields if name not in mapping]
    if missing:
        raise InfoGANError(f"{section}.{missing[0]} is missing from the params")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in mapping.items():
        key = f"{section}.{name}"
        value = _coerce(key, value, hints[name])
        meta = fields[name].metadata
        if "min" in meta and isinstance(value, (int, float)):
            too_small = value <= meta["min"] if meta["exclusive"] else value < meta["min"]
            if too_small:
                bound = "greater than" if meta["exclusive"] else "at least"
                raise InfoGANError(f"{key} = {value!r} is invalid: it must be {bound} {meta['min']}")
        values[name] = value
    try:
        return cls(**values)
    except InfoGANError as err:
        raise InfoGANError(f"{section}: {err}") from None


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


def to_dict(config: Any) -> dict[str, Any]:
    """The dataclass as plain JSON-able types (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def _check_seed(seed: int) -> None:
    """A seed's upper bound (its lower one, 0, is the field's `non_negative`)."""
    if seed > MAX_SEED:
        raise InfoGANError(f"seed must be at most {MAX_SEED} (NumPy's largest seed), got {seed}")


@dataclass(frozen=True)
class TrainConfig:
    """How long and where to train; the seed's CLI arguments map onto these keys."""

    seed: int = non_negative()  # and at most MAX_SEED
    batch_size: int = positive()
    batches_per_epoch: int = positive()
    max_epochs: int = positive()
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"]
    devices: int | Literal["auto"] = _bounded(1)  # per node: auto, or a count (Lightning's -1 for "all" is auto here)
    # Lightning's strategy. auto: one process on one device, DDP across several devices or nodes; ddp and
    # its Lightning name ddp_find_unused_parameters_true: DDP with find_unused_parameters (infogan/trainer.py
    # says why). ddp_spawn and ddp_fork are not offered: they train in processes started from the stage's,
    # which then has neither the training's history nor its model to write (both failed when tried)
    strategy: Literal["auto", "ddp", "ddp_find_unused_parameters_true"]
    num_nodes: int = positive()  # machines; each runs `devices` processes
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"]  # auto: infogan.hardware
    compile: bool | Literal["auto"]  # torch.compile the networks; auto: infogan.hardware
    log_every_n_steps: int = positive()
    sample_every_n_epochs: int = positive()
    eval_batch_size: int = positive()
    # iterations between saves of the whole training state, which an interrupted run resumes from
    checkpoint_every_n_steps: int = positive()

    def __post_init__(self) -> None:
        _check_seed(self.seed)


@dataclass(frozen=True)
class RenderConfig:
    """Traversal GIFs and evaluation after training."""

    continuous_range: tuple[float, ...]
    continuous_frames: int = positive()
    samples_per_row: int = positive()
    scale: int = positive()
    frame_ms: int = positive()
    seed: int = non_negative()  # and at most MAX_SEED
    mi_samples: int = positive()
    factor_samples: int = positive()  # latents per continuous-code sweep (infogan/factors.py)
    # a continuous code's GIF is named after the property it controls (slant.gif) only when its
    # |Spearman rho| with it reaches this (infogan/factors.factor_names); otherwise continuous_<j>.gif
    factor_name_min_rho: float = non_negative()
    eval_batch_size: int = positive()
    # the CNN that reads which digit each class of c1 draws (infogan/digit_classifier.py), for digits only
    classifier_epochs: int = positive()
    classifier_batch_size: int = positive()
    classifier_images: int = positive()  # the first this many of the training split train it
    purity_samples: int = positive()  # generated images per class of c1

    def __post_init__(self) -> None:
        _check_seed(self.seed)
        if len(self.continuous_range) != 2 or self.continuous_range[0] >= self.continuous_range[1]:
            raise InfoGANError(
                f"continuous_range must be [low, high] with low < high, got {list(self.continuous_range)}"
            )


def split_section(mapping: Mapping[str, Any], classes: tuple[type, ...], section: str) -> tuple:
    """Build several configs from one params section whose keys they share out; every key must belong to one."""
    if not isinstance(mapping, Mapping):
        raise InfoGANError(f"{section} must be a mapping of keys to values, got {mapping!r}")
    owned = [{f.name for f in dataclasses.fields(cls)} for cls in classes]
    unknown = sorted(set(mapping) - set().union(*owned))
    if unknown:
        allowed = ", ".join(sorted(set().union(*owned)))
        raise InfoGANError(f"unknown key {section}.{unknown[0]}; the keys of {section} are: {allowed}")
    return tuple(
        from_mapping(cls, {k: v for k, v in mapping.items() if k in names}, section)
        for cls, names in zip(classes, owned, strict=True)
    )


def resolve_recipe_length(train: Any) -> Any:
    """The params section `train` with `max_epochs` made one number.

    `max_epochs` is one number for every recipe, or one per recipe (`{improved: 20, paper: 120}`), so
    that `train.recipe` alone switches to that recipe's own length. Both lengths are checked whichever
    recipe runs; an unknown or missing recipe is left for the recipe's own check to name.
    """
    if not isinstance(train, Mapping) or not isinstance(train.get("max_epochs"), Mapping):
        return train
    lengths = train["max_epochs"]
    recipes = typing.get_args(typing.get_type_hints(OptimConfig)["recipe"])
    if set(lengths) != set(recipes):
        raise InfoGANError(
            f"train.max_epochs per recipe must give one length for each of {', '.join(recipes)}, "
            f"got {', '.join(map(str, lengths)) or 'none'}"
        )
    for recipe, epochs in lengths.items():
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise InfoGANError(f"train.max_epochs.{recipe} = {epochs!r} is invalid: it must be a positive integer")
    if train.get("recipe") not in lengths:
        return train
    return {**train, "max_epochs": lengths[train["recipe"]]}
