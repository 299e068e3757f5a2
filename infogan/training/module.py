"""The InfoGAN LightningModule: it trains an `InfoGAN` (infogan/model/infogan.py), owning the
optimizers and the named steps of one training iteration.

One iteration draws a latent batch, runs G once, then
  1. discriminator step: D's adversarial loss on real and detached fake images, plus the
     information loss on the fakes, updates the shared trunk, the D head and the Q head;
  2. generator step: G's adversarial loss plus the same information loss, through the updated
     D/Q (frozen by `toggled_optimizer`), updates G.
So the information term reaches G, Q and the shared trunk, as in the paper's min-max of
V(D, G) - lambda * L_I(G, Q).

With `train.recipe: improved` (infogan/config.py, ImprovedConfig) a nuisance transformation T
(infogan/model/augment.py) adds terms that each have a weight, and are not computed at weight 0: the
categorical information term on T(fake) in both steps; and, in the discriminator step, terms on
Q's class of real images: its consistency between x and T(x), the mutual information between those
two classes, SCAN's self-labelling (Q's confident class of x as T(x)'s target), and the entropies
H(c | x) and H(c), and its virtual adversarial consistency (`improved.real_vat`: IMSAT's VAT, x
against x + r, r the perturbation that moves Q's class most); and the dependence between the
continuous codes Q reads from real images and each one's distance from its prior
(`real_image_terms`); and, in the generator step,
the continuous codes' mixed second derivatives (`improved.continuous_hessian`, or relative to their
first derivatives, `improved.continuous_hessian_relative`) and the overlap of
their effects on the image (`improved.continuous_orthogonal`), and a code's effect turned the other way
on another class (`improved.continuous_class_agreement`). With `improved.continuous_read_noise`,
G's continuous information term is read by Q from noisy fakes, which Q learns to read in D's step. With
`improved.continuous_cross_reading`, D's step also asks Q's reading of each continuous code to stay
where it is when only the other continuous codes change (`cross_reading`). With
`improved.contrastive`, both steps add InfoGAN-CR's term: a pair head (not part of the model) names
the one code two generated images share; it learns to in D's step, and G learns to make it easy.
With `improved.continuous_stagger`, the continuous codes start one after another (held at 0 and
unpaid before), and with `improved.continuous_anchor` G's step also pays the earlier codes'
information as a frozen copy of Q, taken when the newest code started (and, with
`improved.continuous_anchor_retake`, again later, then reading every code), reads it; with
`improved.continuous_hold`, it also pays for each earlier code's effect on the image turning away from
the change a frozen copy of G, taken at the same start, makes with it. With
`improved.continuous_turn_every`, the continuous codes are turned now and then to the pair Q reads
least dependent within its classes on real images (`turn_codes`): the same networks, the codes
re-expressed.
"""

from __future__ import annotations

import copy
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from infogan.config import ImprovedConfig, ModelConfig, TrainConfig, TrainingConfig
from infogan.data.images import to_model_range
from infogan.errors import InfoGANError
from infogan.evaluation.metrics import continuous_readings_and_classes
from infogan.model.augment import nuisance
from infogan.model.codes import Latent
from infogan.model.infogan import InfoGAN, turn_slice
from infogan.model.losses import (
    InfoLoss,
    categorical_consistency,
    categorical_entropies,
    categorical_mutual_information,
    categorical_nll,
    categorical_self_label,
    categorical_virtual_adversarial,
    code_effects,
    continuous_class_dependence,
    continuous_class_disagreement,
    continuous_cross_reading,
    continuous_dependence,
    continuous_effect_drift,
    continuous_effect_overlap,
    continuous_marginal_distance,
    continuous_mixed_derivatives,
    continuous_shared_effect,
    discriminator_loss,
    gaussian_nll,
    generator_loss,
    information_loss,
    least_dependent_turn,
    least_mixed_turn,
)
from infogan.model.networks import CodeParams, PairHead
from infogan.training.bookkeeping import Losses, NonFiniteWatch, RunningMeans, iterations_done, iterations_planned
from infogan.training.callbacks import WeightAverage

# latents the final turn's mixed derivative is averaged over (improved.continuous_final_turn): 4 generator
# passes over them for each of 61 angles, 68 s with two threads on a 2-core Zen 5 (docs/digits.md, round 36)
FINAL_TURN_LATENTS = 1024
CONTRASTIVE_ROWS = 64  # latents of each batch that get a partner sharing one code (one more G pass each)


def final_turn(model: InfoGAN) -> tuple[torch.Tensor, list[float]]:
    """`least_mixed_turn` of `model`'s continuous codes, as `improved.continuous_final_turn` finds it:
    over FINAL_TURN_LATENTS latents drawn from a generator seeded 0, with batch norm reading its running
    statistics (the model is left in eval mode), as render draws."""
    draw = torch.Generator(device=model.device).manual_seed(0)
    vector = model.codes.sample(FINAL_TURN_LATENTS, generator=draw, device=model.device).vector
    model.eval()
    return least_mixed_turn(model.generator, vector, model.codes.n_continuous)


class InfoGANTraining(pl.LightningModule):
    def __init__(
        self,
        model: ModelConfig | dict[str, Any],
        train: TrainConfig | dict[str, Any],
        improved: ImprovedConfig | dict[str, Any] | None = None,
        compile_networks: bool = False,
    ):
        """The params sections `model.<dataset>`, `train` and `improved` (needed with
        `train.recipe: improved` only). `compile_networks`: `torch.compile` each network when fit
        starts (a runtime choice, not saved with the hyperparameters, so a checkpoint always reloads
        uncompiled)."""
        super().__init__()
        self.config = TrainingConfig.of(model, train, improved)
        # plain dicts, keyed as in params.yaml, so a checkpoint reloads with `load_from_checkpoint(path)`
        self.save_hyperparameters(self.config.to_dict())
        self.automatic_optimization = False
        self.improved = self.config.improved_terms()  # None: the paper's objective alone
        self.model = InfoGAN(self.config.model)
        self.pair_head = self._pair_head()  # after the model: its initial weights are the same either way
        # each continuous code's factor on lambda_cont (improved.continuous_weight_ratio); None: 1 each
        ratio = self.improved.continuous_weight_ratio if self.improved is not None else 1.0
        weights = ratio ** torch.arange(self.model.codes.n_continuous, dtype=torch.float32) if ratio != 1 else None
        self.register_buffer("continuous_weights", weights, persistent=False)  # a hyperparameter, not a state
        # continuous codes drawn and paid this iteration (improved.continuous_stagger); the rest are held at 0
        self.continuous_started = self.model.codes.n_continuous
        # whether the anchor was taken again (improved.continuous_anchor_retake) since the last code started,
        # so that it reads every code started
        self.anchor_retaken = False
        self.anchor = self._anchor()  # after the model and the pair head: their initial weights stay the same
        self.held_generator = self._held_generator()
        self.compile_networks = compile_networks
        # losses are summed on the device and read back only when logged: no per-step sync
        self._window, self._epoch = RunningMeans(), RunningMeans()
        self._restored_means: list[dict[str, Any]] | None = None  # per rank, from a checkpoint, taken up in fit
        self.nonfinite = NonFiniteWatch()
        self.skipped_steps = 0  # optimizer steps skipped for a non-finite loss (on_nonfinite: skip)

    def _pair_head(self) -> PairHead | None:
        """With `improved.contrastive` and at least two codes a pair may share: the pair head, one logit
        per such code (`improved.contrastive_codes`); else None."""
        if self.improved is None or self.improved.contrastive == 0:
            return None
        codes = self.model.codes
        shared = codes.n_continuous if self.improved.contrastive_codes == "continuous" else codes.n_codes
        return PairHead(self.config.model, shared) if shared > 1 else None

    def _anchor(self) -> torch.nn.ModuleDict | None:
        """With `improved.continuous_anchor` and two continuous codes or more: a frozen copy of D's
        trunk and Q's head (`trunk`, `q_head`), filled when each later code starts
        (`take_anchor`); else None. Built here, so that a checkpoint holds it and a resumed run reads it."""
        if self.improved is None or self.improved.continuous_anchor == 0 or self.model.codes.n_continuous < 2:
            return None
        anchor = torch.nn.ModuleDict(
            {"trunk": copy.deepcopy(self.model.trunk), "q_head": copy.deepcopy(self.model.q_head)}
        )
        return anchor.requires_grad_(False)

    def _held_generator(self) -> torch.nn.Module | None:
        """With `improved.continuous_hold` and two continuous codes or more: a frozen copy of G, filled
        when each later code starts (`take_hold`); else None. Built here, so that a checkpoint holds it."""
        if self.improved is None or self.improved.continuous_hold == 0 or self.model.codes.n_continuous < 2:
            return None
        return copy.deepcopy(self.model.generator).requires_grad_(False)

    def take_hold(self) -> None:
        """Copy G, weights and batch-norm statistics, into the held generator."""
        self.held_generator.load_state_dict(self.model.generator.state_dict())

    def take_anchor(self) -> None:
        """Copy D's trunk and Q's head, weights and batch-norm statistics, into the anchor."""
        self.anchor["trunk"].load_state_dict(self.model.trunk.state_dict())
        self.anchor["q_head"].load_state_dict(self.model.q_head.state_dict())

    def anchored_information(self, fake: torch.Tensor, latent: Latent) -> torch.Tensor:
        """With the anchor: the information loss, nats, of the codes started before the newest one
        (all but the last of `continuous_started`; all of them once the anchor is retaken), as the
        anchor reads them from `fake`'s first `improved.continuous_anchor_rows` images (all with 0);
        0 while only one code has started and the anchor is not retaken."""
        anchored = self.continuous_started - (0 if self.anchor_retaken else 1)
        if anchored < 1:
            return fake.new_zeros((), dtype=torch.float32)
        rows = self.improved.continuous_anchor_rows or len(fake)
        fake, latent = fake[:rows], latent.first(rows)
        q = self.anchor["q_head"](self.anchor["trunk"](fake))
        return gaussian_nll(
            q.continuous_mean[:, :anchored], q.continuous_log_scale[:, :anchored], latent.continuous[:, :anchored]
        ).sum()

    def configure_optimizers(self):
        train, model = self.config.train, self.model
        betas = (train.beta1, train.beta2)
        d_params = [*model.trunk.parameters(), *model.d_head.parameters(), *model.q_head.parameters()]
        if self.pair_head is not None:
            d_params += self.pair_head.parameters()
        # fused: one kernel per step over all tensors, step counters on the device (no host reads);
        # docs/benchmarks.md has its share of the step (`benchmarks/train_throughput.py --ladder`)
        fused = self.device.type in ("cpu", "cuda")
        opt_d = torch.optim.Adam(d_params, lr=train.lr_d, betas=betas, fused=fused)
        opt_g = torch.optim.Adam(model.generator.parameters(), lr=train.lr_g, betas=betas, fused=fused)
        return opt_d, opt_g

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Generate images (B, C, H, W) in [-1, 1] from latent vectors (B, latent_dim)."""
        return self.model(latent)

    def information_loss(self, q: CodeParams, latent: Latent) -> InfoLoss:
        return information_loss(q, latent.categorical, latent.continuous, self.model.codes.categorical_sizes)

    def weighted_information(
        self, info: InfoLoss, continuous_each: torch.Tensor | None = None, continuous: bool = True
    ) -> torch.Tensor:
        """lambda_cat times the categorical term plus lambda_cont times the continuous codes' terms
        (`continuous_each` in place of `info`'s when given), each code weighted as
        `improved.continuous_weight_ratio` says; `continuous` False: the categorical term alone."""
        train = self.config.train
        categorical = train.lambda_cat * info.categorical
        if not continuous:
            return categorical
        return categorical + train.lambda_cont * self.continuous_sum(
            info.continuous_each if continuous_each is None else continuous_each
        )

    def continuous_sum(self, each: torch.Tensor) -> torch.Tensor:
        """The continuous codes' information terms (n_continuous,) summed, with their weights if unequal;
        the codes not started yet (`continuous_started`) are left out."""
        started = self.continuous_started
        weights = self.continuous_weights
        return each[:started].sum() if weights is None else (each[:started] * weights[:started]).sum()

    def started_continuous(self, iteration: int) -> int:
        """How many continuous codes are drawn and paid at `iteration` (counted from 1): none for the
        first `improved.continuous_start` S iterations; then, with `improved.continuous_stagger` N > 0,
        code k starts after S + k * N iterations; otherwise all."""
        n_continuous = self.model.codes.n_continuous
        start = self.improved.continuous_start if self.improved is not None else 0
        stagger = self.improved.continuous_stagger if self.improved is not None else 0
        if iteration <= start:
            return 0
        return n_continuous if stagger == 0 else min(n_continuous, (iteration - start - 1) // stagger + 1)

    def noisy_continuous_information(self, fake: torch.Tensor, latent: Latent) -> torch.Tensor:
        """With `improved.continuous_read_noise` s: each continuous code's information loss, nats
        (n_continuous,), as Q reads it from fake + N(0, s^2) noise on every pixel. A code whose effect
        on the image is small beside that noise can hardly be read back, so it earns little."""
        noisy = fake + self.improved.continuous_read_noise * torch.randn_like(fake)
        return self.information_loss(self.model.encode(noisy), latent).continuous_each

    def reads_through_noise(self) -> bool:
        """Whether G's continuous information term is read through noise (`improved.continuous_read_noise`)."""
        improved = self.improved
        return improved is not None and improved.continuous_read_noise > 0 and self.model.codes.n_continuous > 0

    def augmented_information(self, fake: torch.Tensor, latent: Latent) -> torch.Tensor:
        """Improved recipe: the categorical information loss on T(fake), nats, on the first
        `improved.augmented_information_rows` images (all with 0)."""
        rows = self.improved.augmented_information_rows or len(fake)
        fake, latent = fake[:rows], latent.first(rows)
        logits = self.model.encode(nuisance(fake, self.improved)).categorical_logits
        return categorical_nll(logits, latent.categorical, self.model.codes.categorical_sizes).sum()

    def discriminator_step(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        latent: Latent,
        partners: torch.Tensor | None = None,
        fake_class_weight: float = 1.0,
        pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """`partners`: with `improved.neighbours`, one pixel-space neighbour of each real image.
        `fake_class_weight` scales the categorical information terms here, where they teach Q the
        class of generated images; G's step always has them whole. `pairs`: with
        `improved.contrastive`, `contrastive_pairs`' second images and kept codes."""
        model = self.model
        real_features = model.trunk(real)
        real_logits = model.d_head(real_features)
        fake_features = model.trunk(fake.detach())
        adversarial = discriminator_loss(real_logits, model.d_head(fake_features), self.config.train.adversarial_loss)
        info = self.information_loss(model.q_head(fake_features), latent)
        weighted = self.weighted_information(info)
        if fake_class_weight != 1.0:
            weighted = weighted - (1.0 - fake_class_weight) * self.config.train.lambda_cat * info.categorical
        losses = {
            "total": adversarial + weighted,
            "loss/d": adversarial,
            "info/categorical": info.categorical,
            "info/continuous": info.continuous,
        }
        improved = self.improved
        if improved is not None:  # a term with weight 0 is not computed
            if improved.augmented_information > 0:
                augmented = self.augmented_information(fake.detach(), latent)
                weight = improved.augmented_information * fake_class_weight
                losses["total"] = losses["total"] + weight * augmented
                losses["improved/augmented_information"] = augmented
            real_terms, logged = self.real_image_terms(real, real_features, partners)
            if logged:
                losses["total"] = losses["total"] + real_terms
                losses.update(logged)
            if self.reads_through_noise():  # Q also learns to read the codes through the noise
                noisy = self.noisy_continuous_information(fake.detach(), latent)
                losses["total"] = losses["total"] + self.config.train.lambda_cont * self.continuous_sum(noisy)
                losses["improved/continuous_read_noise_d"] = noisy.sum()
            if improved.continuous_cross_reading > 0 and self.model.codes.n_continuous > 1:
                # logged from the first iteration (0 until a second code starts), so every iteration has its keys
                cross = self.cross_reading(fake.detach(), latent)
                losses["total"] = losses["total"] + improved.continuous_cross_reading * cross
                losses["improved/continuous_cross_reading"] = cross
            if pairs is not None:
                contrastive = self.contrastive_loss(fake.detach(), pairs[0].detach(), pairs[1])
                losses["total"] = losses["total"] + improved.contrastive * contrastive
                losses["improved/contrastive_d"] = contrastive
        return losses

    def cross_reading(self, fake: torch.Tensor, latent: Latent) -> torch.Tensor:
        """`improved.continuous_cross_reading`'s term on the first `improved.continuous_rows` latents:
        how far Q's reading of one started continuous code moves between `fake` and the image G draws
        with the other started codes drawn anew (`continuous_cross_reading`); 0 while fewer than two
        have started. The second images are drawn without a graph: the term teaches Q, not G."""
        started = self.continuous_started
        if started < 2:
            return fake.new_zeros((), dtype=torch.float32)
        rows = latent.first(self.improved.continuous_rows)
        moved, kept = self.model.codes.redraw_other_continuous(rows, started)
        with torch.no_grad():
            moved_fake = self.model.generator(moved.vector)
        # one batch, so that both images are normalised by the same batch statistics
        means = self.model.encode(torch.cat([fake[: len(kept)], moved_fake])).continuous_mean
        return continuous_cross_reading(means[: len(kept)], means[len(kept) :], kept)

    def contrastive_pairs(self, latent: Latent) -> tuple[torch.Tensor, torch.Tensor] | None:
        """With `improved.contrastive`: for the first CONTRASTIVE_ROWS latents, a partner sharing one
        code (LatentCodes.share_one_code), generated; returns the partners' images and the kept codes."""
        if self.pair_head is None:
            return None
        first = latent.first(CONTRASTIVE_ROWS)
        partner, kept = self.model.codes.share_one_code(
            first, continuous_only=self.improved.contrastive_codes == "continuous"
        )
        partner = self.model.codes.hold_continuous(partner, self.continuous_started)  # as its first: none drawn early
        return self.model.generator(partner.vector), kept

    def contrastive_loss(self, fake: torch.Tensor, partners: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        """InfoGAN-CR's term: the pair head's cross-entropy, nats, for which code each of the first
        len(kept) fakes shares with its partner."""
        return F.cross_entropy(self.pair_head(fake[: len(kept)], partners), kept)

    def real_image_terms(
        self, real: torch.Tensor, real_features: torch.Tensor, partners: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict]:
        """Improved recipe: the terms on Q's class of real images, and on the continuous codes it reads
        from them: their dependence (`improved.real_continuous_dependence`, with two codes or more; within
        each class Q reads, `improved.real_continuous_class_dependence`) and
        each one's distance from its prior (`improved.real_continuous_marginal`); and IMSAT's virtual
        adversarial term (`improved.real_vat`), its perturbation's norm a share of each x's distance to
        its partner x'. With `improved.real_teacher` the consistency, self-labelling and virtual
        adversarial terms pull towards the moving average's classes of x, not the live Q's, after
        `improved.real_teacher_start` iterations; the virtual adversarial term is 0 for the first
        `improved.real_vat_start`. Returns their weighted sum (to add to D's loss) and
        each term's unweighted value by name (to log). Only terms with a weight above 0 are computed;
        T is drawn once for the terms that compare x with T(x), or with T(x') for `partners` x' (one
        neighbour of each x) when given."""
        improved, sizes = self.improved, self.model.codes.categorical_sizes
        entropies = improved.real_entropy > 0 or improved.real_marginal_entropy > 0
        compared = improved.real_consistency > 0 or improved.real_information > 0 or improved.self_label > 0
        virtual_adversarial = improved.real_vat > 0
        if virtual_adversarial and partners is None:  # ImprovedConfig asks for neighbours with it
            raise InfoGANError("improved.real_vat needs each real image's neighbour (improved.neighbours > 0)")
        started = self.continuous_started  # the codes held at 0 so far are not read
        # from the number of codes, not of those started, so the keys stay the same on every iteration
        several = self.model.codes.n_continuous > 1
        dependence = improved.real_continuous_dependence > 0 and several
        class_dependence = improved.real_continuous_class_dependence > 0 and several and bool(sizes)
        continuous_marginal = improved.real_continuous_marginal > 0 and self.model.codes.n_continuous > 0
        if not (entropies or compared or virtual_adversarial or dependence or class_dependence or continuous_marginal):
            return real_features.new_zeros(()), {}  # Q's head not run: its batch-norm statistics stay as they are
        weighted: list[tuple[float, str, torch.Tensor]] = []
        q = self.model.q_head(real_features)
        logits = q.categorical_logits
        if dependence:
            value = continuous_dependence(q.continuous_mean[:, :started])
            weighted.append((improved.real_continuous_dependence, "improved/real_continuous_dependence", value))
        if class_dependence:
            classes = logits[:, : sizes[0]].detach().argmax(dim=1)  # Q's own class of each real image
            value = continuous_class_dependence(q.continuous_mean[:, :started], classes, sizes[0])
            key = "improved/real_continuous_class_dependence"
            weighted.append((improved.real_continuous_class_dependence, key, value))
        if continuous_marginal:
            value = continuous_marginal_distance(q.continuous_mean[:, :started], self.model.codes.continuous_prior)
            weighted.append((improved.real_continuous_marginal, "improved/real_continuous_marginal", value))
        if entropies:
            conditional, marginal = categorical_entropies(logits, sizes)
            if improved.real_entropy > 0:
                weighted.append((improved.real_entropy, "improved/real_entropy", conditional))
            if improved.real_marginal_entropy > 0:
                weighted.append((-improved.real_marginal_entropy, "improved/real_marginal_entropy", marginal))
        # the class each real image is pulled towards: the live Q's, or the moving average's
        taught = improved.real_teacher and self.after(improved.real_teacher_start)
        target = self.teacher_logits(real) if taught and (compared or virtual_adversarial) else logits
        if compared:
            moved = self.model.encode(nuisance(real if partners is None else partners, improved)).categorical_logits
            if improved.real_consistency > 0:
                consistency = categorical_consistency(target, moved, sizes)
                weighted.append((improved.real_consistency, "improved/real_consistency", consistency))
            if improved.real_information > 0:
                information = categorical_mutual_information(logits, moved, sizes)
                weighted.append((-improved.real_information, "improved/real_information", information))
            if improved.self_label > 0:
                self_label = categorical_self_label(target, moved, sizes, improved.self_label_threshold)
                weighted.append((improved.self_label, "improved/self_label", self_label))
        if virtual_adversarial:  # logged from the first iteration (0 before its start), so every iteration has its keys
            value = logits.new_zeros((), dtype=torch.float32)
            if self.after(improved.real_vat_start):
                radius = improved.real_vat_radius * (real - partners).flatten(1).norm(dim=1)
                value = categorical_virtual_adversarial(
                    lambda images: self.model.encode(images).categorical_logits, real, target, sizes, radius
                )
            weighted.append((improved.real_vat, "improved/real_vat", value))
        total = sum((weight * value for weight, _, value in weighted), logits.new_zeros(()))
        return total, {key: value for _, key, value in weighted}

    def after(self, start: int) -> bool:
        """Whether this iteration comes after the first `start` ones: always with `start` 0, where the
        iteration is not read (a step run without a Trainer has none)."""
        return start == 0 or self.iteration > start

    def teacher(self) -> InfoGAN:
        """With `improved.real_teacher`: the networks whose classes of real images the consistency terms
        take as targets, the weights' moving average (the live networks before its first update)."""
        averages = [a for a in self.trainer.callbacks if isinstance(a, WeightAverage)]
        if not averages:
            raise InfoGANError("improved.real_teacher needs the weights' moving average (improved.ema_decay > 0)")
        return averages[0].networks(self)

    def teacher_logits(self, real: torch.Tensor) -> torch.Tensor:
        """The teacher's categorical logits for `real`, read as the evaluation reads them (batch norm on
        its running statistics), without a graph."""
        teacher = self.teacher()
        was_training = teacher.training
        teacher.eval()
        with torch.no_grad():
            logits = teacher.encode(real).categorical_logits
        teacher.train(was_training)
        return logits

    def generator_step(
        self,
        fake: torch.Tensor,
        latent: Latent,
        pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
        contrastive_paid: bool = True,
    ) -> dict[str, torch.Tensor]:
        """`contrastive_paid`: whether G is paid the contrastive term on `pairs` this iteration (see
        `improved.contrastive_start`); it is logged either way."""
        features = self.model.trunk(fake)
        adversarial = generator_loss(self.model.d_head(features), self.config.train.adversarial_loss)
        info = self.information_loss(self.model.q_head(features), latent)
        # with the read noise, G is paid only what Q reads through it
        noisy = self.noisy_continuous_information(fake, latent) if self.reads_through_noise() else None
        # after the retake with `improved.continuous_anchor_alone`, the anchor alone pays the continuous codes
        live = not (self.anchor_retaken and self.improved.continuous_anchor_alone)
        total = adversarial + self.weighted_information(info, continuous_each=noisy, continuous=live)
        losses = {"loss/g": adversarial}
        if noisy is not None:
            losses["improved/continuous_read_noise_g"] = noisy.sum()
        improved = self.improved
        if improved is not None and improved.augmented_information > 0:
            total = total + improved.augmented_information * self.augmented_information(fake, latent)
        if self.anchor is not None:  # logged from the first iteration (0 before), so every iteration has its keys
            anchored = self.anchored_information(fake, latent)
            total = total + improved.continuous_anchor * self.config.train.lambda_cont * anchored
            losses["improved/continuous_anchor"] = anchored
        if self.held_generator is not None:  # logged from the first iteration (0 before a second code starts)
            rows = latent.vector[: improved.continuous_rows]
            held = max(self.continuous_started - 1, 0)  # the codes started before the newest
            n_continuous, pool = self.model.codes.n_continuous, improved.continuous_hold_pool
            drift = continuous_effect_drift(self.model.generator, self.held_generator, rows, n_continuous, held, pool)
            total = total + improved.continuous_hold * drift
            losses["improved/continuous_hold"] = drift
        if improved is not None:
            for key, (weight, value) in self.code_effect_terms(latent).items():
                total = total + weight * value
                losses[f"improved/{key}"] = value
        if pairs is not None:
            with torch.set_grad_enabled(contrastive_paid and torch.is_grad_enabled()):  # logged only: no graph
                contrastive = self.contrastive_loss(fake, *pairs)
            if contrastive_paid:
                total = total + improved.contrastive * contrastive
            losses["improved/contrastive_g"] = contrastive
        return {"total": total, **losses}

    def code_effect_terms(self, latent: Latent) -> dict[str, tuple[float, torch.Tensor]]:
        """Improved recipe: G's terms on how the continuous codes change the image, by name, each with
        its weight and value: between codes (`improved.continuous_hessian`, `continuous_hessian_relative`,
        `continuous_orthogonal`, `continuous_shared_effect`, with two codes or more) and across classes
        (`improved.continuous_class_agreement`). All read one set of generator passes (`code_effects`)
        on the first `improved.continuous_rows` latents, and with the class term the same latents drawn
        as another class too; the codes not started are held at 0 and not compared (with a stagger,
        each term is 0 until its codes start). Only terms with a weight above 0; with none, no pass."""
        improved, codes = self.improved, self.model.codes
        weights = {}
        if codes.n_continuous > 1:  # the terms between codes
            between = (
                "continuous_hessian",
                "continuous_hessian_relative",
                "continuous_orthogonal",
                "continuous_shared_effect",
            )
            weights.update({key: getattr(improved, key) for key in between})
        if codes.categorical_sizes:
            weights["continuous_class_agreement"] = improved.continuous_class_agreement
        weights = {key: weight for key, weight in weights.items() if weight > 0}
        if not weights:
            return {}
        rows = latent.first(improved.continuous_rows)
        vectors = [rows.vector]
        if "continuous_class_agreement" in weights:  # the codes not started are held at 0 in both
            vectors.append(codes.other_class(rows).vector)
        effects = code_effects(
            self.model.generator, torch.stack(vectors), codes.n_continuous, started=self.continuous_started
        )
        terms = {
            "continuous_hessian": lambda: continuous_mixed_derivatives(effects),
            "continuous_hessian_relative": lambda: continuous_mixed_derivatives(effects, relative=True),
            "continuous_orthogonal": lambda: continuous_effect_overlap(effects),
            "continuous_shared_effect": lambda: continuous_shared_effect(effects),
            "continuous_class_agreement": lambda: continuous_class_disagreement(
                effects, pool=improved.continuous_class_agreement_pool
            ),
        }
        return {key: (weight, terms[key]()) for key, weight in weights.items()}

    def on_fit_start(self) -> None:
        if self.device.type == "cuda":  # NHWC is what cuDNN's convolutions run fastest on
            self.to(memory_format=torch.channels_last)
        if self.compile_networks:
            model = self.model
            for part in (model.generator, model.trunk, model.d_head, model.q_head):
                part.compile()  # in place: parameter names, and so checkpoints, stay the same
            if self.pair_head is not None:
                self.pair_head.compile()
        if self.trainer.world_size > 1:
            # Lightning seeds every rank alike. Each rank must draw its own latents, or all of them would
            # generate the same fakes and the generator would see one rank's batch, not world_size of them
            rank_seed = (torch.initial_seed() * 0x9E3779B97F4A7C15 + self.trainer.global_rank + 1) % 2**63
            torch.manual_seed(rank_seed)  # the CUDA generators too
        self._window, self._epoch = RunningMeans(), RunningMeans()
        rank = self.trainer.global_rank
        if self._restored_means is not None and rank < len(self._restored_means):  # resumed: the sums so far count
            restored = self._restored_means[rank]
            self._window.load_state_dict(restored["window"], self.device)
            self._epoch.load_state_dict(restored["epoch"], self.device)
            self.skipped_steps = restored.get("skipped_steps", 0)
        self._restored_means = None
        self.nonfinite = NonFiniteWatch()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._check_finite()  # a checkpoint is never written after a non-finite loss
        means = {
            "window": self._window.state_dict(),
            "epoch": self._epoch.state_dict(),
            "skipped_steps": self.skipped_steps,
        }
        checkpoint["running_means"] = means
        if self._world_size() > 1:  # each rank's sums are its own; every rank saves at once, so they gather here
            by_rank: list[Any] = [None] * self._world_size()
            torch.distributed.all_gather_object(by_rank, means)
            checkpoint["running_means_by_rank"] = by_rank

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        by_rank = checkpoint.get("running_means_by_rank")
        self._restored_means = by_rank or ([checkpoint["running_means"]] if "running_means" in checkpoint else None)

    def training_step(self, batch: torch.Tensor | tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """`batch`: uint8 real images, or (images, a neighbour of each) with `improved.neighbours`."""
        images, partners = batch if isinstance(batch, (tuple, list)) else (batch, None)
        real = to_model_range(images).contiguous(memory_format=self._memory_format())
        if partners is not None:
            partners = to_model_range(partners).contiguous(memory_format=self._memory_format())
        opt_d, opt_g = self.optimizers()
        self.set_learning_rates(opt_d, opt_g)
        started = self.started_continuous(self.iteration)
        retake = self.improved.continuous_anchor_retake if self.anchor is not None else 0
        # a code starts beside others; from the iteration before (not the state kept), so that a run resumed
        # from a checkpoint written just before a code's start still takes its copies there
        beside = started > max(self.started_continuous(self.iteration - 1), 1)
        if self.anchor is not None and (beside or self.iteration == retake):
            self.take_anchor()  # the reader so far is kept (and again at the retake)
        if self.held_generator is not None and beside:
            self.take_hold()  # and the changes the codes so far make
        self.continuous_started = started
        self.anchor_retaken = 0 < retake <= self.iteration and self.started_continuous(retake) == started
        if self.turns_codes():
            angles = self.turn_codes()
            for logger in self.loggers:
                logger.log_metrics({"improved/continuous_turn_degrees": angles[0]}, step=self.iteration)
        latent = self.model.codes.hold_continuous(
            self.model.codes.sample(real.shape[0], device=self.device), self.continuous_started
        )
        fake = self.model.generator(latent.vector)  # the one G forward of this iteration (and the pairs')
        pairs = self.contrastive_pairs(latent)

        with self.toggled_optimizer(opt_d):
            d_losses = self.discriminator_step(real, fake, latent, partners, self.fake_class_weight(), pairs)
            d_ok = self._optimize(opt_d, d_losses.pop("total"))

        with self.toggled_optimizer(opt_g):
            g_losses = self.generator_step(fake, latent, pairs, contrastive_paid=self.pays_contrastive(self.iteration))
            g_ok = self._optimize(opt_g, g_losses.pop("total"))

        last_of_epoch = batch_idx + 1 == self.trainer.num_training_batches
        if d_ok and g_ok:
            losses = Losses.stack({**d_losses, **g_losses})
            self.nonfinite.watch(losses, self.iteration)
            self._log_losses(losses, last_of_epoch)
        elif last_of_epoch:  # a skipped iteration's losses are not averaged in, but the epoch still closes
            self._log_losses(None, last_of_epoch)

    def on_train_end(self) -> None:
        """With `improved.continuous_final_turn`: turn the continuous codes of the networks the run
        saves (the moving average, which Lightning's weight averaging has put in place by now) to
        `least_mixed_turn` over FINAL_TURN_LATENTS latents from a fixed seed, and log each pair's angle."""
        if self.improved is None or not self.improved.continuous_final_turn or self.model.codes.n_continuous < 2:
            return
        was_training = self.model.training
        turn, angles = final_turn(self.model)
        self.model.turn_continuous(self.trainer.strategy.broadcast(turn, src=0))  # every rank turns alike
        self.model.train(was_training)
        for logger in self.loggers:
            logger.log_metrics({"improved/continuous_final_turn_degrees": angles[0]}, step=self.iteration)

    def learning_rate_scale(self, iteration: int) -> float:
        """The share of train.lr_d and train.lr_g the step at `iteration` (counted from 1) takes: 1 up
        to `improved.lr_decay_start` N, then falling linearly, (T - iteration + 1) / (T - N) over the
        run's T iterations, to 1 / (T - N) at its last; 1 throughout with N 0 or at least T."""
        start = self.improved.lr_decay_start if self.improved is not None else 0
        total = iterations_planned(self.trainer)
        if start == 0 or start >= total or iteration <= start:
            return 1.0
        return (total - iteration + 1) / (total - start)

    def set_learning_rates(self, opt_d, opt_g) -> None:
        """Give both optimizers this iteration's learning rates (`learning_rate_scale`); set every
        step from the iteration alone, so a run resumed from a checkpoint takes the same ones."""
        scale = self.learning_rate_scale(self.iteration)
        for optimizer, rate in ((opt_d, self.config.train.lr_d), (opt_g, self.config.train.lr_g)):
            for group in optimizer.optimizer.param_groups:
                group["lr"] = rate * scale

    def turns_codes(self) -> bool:
        """Whether this iteration starts with `turn_codes`: with `improved.continuous_turn_every` N > 0,
        after every N iterations done, once every continuous code has started, with two codes or more."""
        every = self.improved.continuous_turn_every if self.improved is not None else 0
        done, n_continuous = self.iteration - 1, self.model.codes.n_continuous
        return (
            every > 0
            and n_continuous >= 2
            and done > 0
            and done % every == 0
            and self.continuous_started == n_continuous
        )

    def turn_codes(self) -> list[float]:
        """Turn the continuous codes to the pair Q reads least dependent within its own classes on the
        real training images (`least_dependent_turn`, no label; the moving average's Q with
        `improved.ema_decay`, else the live one), and re-express every weight that takes them in or
        reads them out (`InfoGAN.continuous_slices`) for the turned codes: the live networks, the
        anchor, the weights' moving average, and Adam's moments of those weights.
        G draws the same images from the turned codes as from the old, and Q reads them back turned, so
        only which pair the prior draws independently changes. Returns each pair's angle (degrees)."""
        # every training image: on a tenth of MNIST's, the angle chosen for one checkpoint ran from 10 to 20
        # degrees with the tenth taken (13 on all; docs/digits.md, round 28), the fourth moments being a few digits' own
        images = self.trainer.datamodule.on_device
        averages = [a.averaged_module() for a in self.trainer.callbacks if isinstance(a, WeightAverage)]
        averages = [average for average in averages if average is not None]
        # the networks the run evaluates read the images: the moving average where there is one (a live
        # Q's readings swing from step to step), else the trained networks
        model = averages[0].model if averages else self.model
        mean, classes = continuous_readings_and_classes(model, images)
        n_classes = model.codes.categorical_sizes[0] if model.codes.categorical_sizes else 1
        turn, angles = least_dependent_turn(mean, classes, n_classes)
        turn = self.trainer.strategy.broadcast(turn, src=0)  # every rank turns alike
        slices = list(self.turned_slices(self))
        moments = {id(p): (dim, index) for p, dim, index in slices}
        with torch.no_grad():
            for tensor, dim, index in slices:
                turn_slice(tensor, dim, index, turn)
            for average in averages:
                for tensor, dim, index in self.turned_slices(average):
                    turn_slice(tensor, dim, index, turn)
            for optimizer in self.optimizers():
                for parameter, state in optimizer.optimizer.state.items():
                    if id(parameter) in moments and "exp_avg" in state:
                        dim, index = moments[id(parameter)]
                        turn_slice(state["exp_avg"], dim, index, turn)
                        turn_slice(state["exp_avg_sq"], dim, index, turn.square())
        return angles

    @staticmethod
    def turned_slices(module: InfoGANTraining) -> list[tuple[torch.Tensor, int, slice]]:
        """`continuous_slices` of `module`'s model and of its anchor's Q head, where it has one."""
        slices = module.model.continuous_slices()
        if module.anchor is not None:
            slices += module.anchor["q_head"].continuous_slices()
        return slices

    def pays_contrastive(self, iteration: int) -> bool:
        """Whether G's step at `iteration` (counted from 1) is paid the contrastive term: from the
        iteration after `improved.contrastive_start` on, when the term is on."""
        return self.pair_head is not None and iteration > self.improved.contrastive_start

    def fake_class_weight(self) -> float:
        """This iteration's weight of the categorical information terms in D's step: with
        `improved.fake_class_warmup` N > 0 it rises linearly from 0 at the first iteration to 1 at
        iteration N + 1, so for a while Q's class is taught by the real-image terms alone and G
        learns to draw what Q already calls each class; otherwise 1."""
        warmup = self.improved.fake_class_warmup if self.improved is not None else 0
        return min(1.0, (self.iteration - 1) / warmup) if warmup > 0 else 1.0

    def _optimize(self, optimizer, total: torch.Tensor) -> bool:
        """Backward and step; with `on_nonfinite: skip`, a non-finite total skips both (one read
        back per step). Returns whether the step was taken. Under DDP every rank skips when any
        must: a rank that skipped its backward alone would leave the others waiting in theirs."""
        if self.config.train.on_nonfinite == "skip" and not self.trainer.strategy.reduce_boolean_decision(
            bool(torch.isfinite(total.detach()).item())
        ):
            self.skipped_steps += 1
            optimizer.zero_grad(set_to_none=True)
            return False
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(total)
        optimizer.step()
        return True

    @property
    def iteration(self) -> int:
        """Training iterations done, this one included."""
        return iterations_done(self.trainer)

    def _memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.device.type == "cuda" else torch.contiguous_format

    def _log_losses(self, losses: Losses | None, last_of_epoch: bool) -> None:
        """Add this iteration's losses to running sums on the device. Every `log_every_n_steps`
        iterations the window's means go to the loggers as `<key>`; on the epoch's last batch the
        epoch's means are logged as `<key>_epoch`. Those two are the only reads back to the host.
        Under DDP both are means over every rank's batches."""
        if losses is not None:
            self._window.add(losses)
            self._epoch.add(losses)
        iteration = self.iteration
        if iteration % self.trainer.log_every_n_steps == 0 and self._window.count:
            self._check_finite()  # stop at the first read back after a non-finite loss
            if self.trainer.world_size > 1:  # the ranks' sums cover as many iterations each: average them
                self.trainer.strategy.reduce(self._window.sums, reduce_op="mean")  # in place
            means = self._window.take()
            for logger in self.loggers:
                logger.log_metrics(means, step=iteration)
        if last_of_epoch and self._epoch.count:
            self._check_finite()
            means = self._epoch.take()
            epoch_means = {f"{key}_epoch": value for key, value in means.items()}
            if self.config.train.on_nonfinite == "skip":
                epoch_means["train/skipped_steps"] = float(self.skipped_steps)
            # sync_dist: under DDP, the mean over ranks (one all-reduce per epoch); a no-op on one device
            self.log_dict(epoch_means, on_step=False, on_epoch=True, sync_dist=True)

    def _world_size(self) -> int:
        """Processes training together; 1 when no Trainer is attached (a checkpoint saved by hand)."""
        return 1 if self._trainer is None else self.trainer.world_size

    def _check_finite(self) -> None:
        """Raise `NonFiniteLoss` if a loss was NaN or infinite. Under DDP every rank raises or none
        does (what the ranks saw is combined first): a rank that stopped alone would leave the
        others waiting in their next collective."""
        if self._world_size() > 1:
            self.nonfinite.combine(self.trainer.strategy.reduce)
        self.nonfinite.check(self.nonfinite_parameters)

    def nonfinite_parameters(self) -> list[str]:
        """The names of the parameters holding a NaN or infinite value (a step on a NaN loss makes them so)."""
        return [name for name, weight in self.model.named_parameters() if not torch.isfinite(weight).all()]
