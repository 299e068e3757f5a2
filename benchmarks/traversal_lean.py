"""How far a continuous code's slant reading comes from digits that already lean one way.

    python benchmarks/traversal_lean.py sweeps/NAME/seed_0/model/model.ckpt [more checkpoints]
        [--test data/prepared/mnist/test.pt] [--readers] [--lean-alone] [--turns train.pt]
        [--stroke-alone] [--digits train.pt] [--joint [--real train.pt]] [--pools N ...] [--trained]

Render's traversal of a code holds the other codes at 0 (infogan/evaluation/factors.py). Beside a
slant code, that 0 is a typical lean, and a code that widens digits along the image's x axis leans
each one further its own way (benchmarks/factor_measures.py): its slant rho then follows the share of
latents leaning right. For each code of each model this prints that share and the median lean at the
code's 0 (the traversal's middle step), the code's mean per-latent slant rho over all latents and over
those leaning right and left, and its median change of slant and width, over render's 100 latents.

It also prints the code's mean slant rho per class of the first categorical code (the traversal's
columns cycle through its classes): a code that turns one digit the other way from the rest reads a
mean near 0.8 on ten classes. With `--test`, a prepared labelled split, each class is shown with the
digit Hungarian matching gives it on those labels (evaluation only), and for each code, per digit,
the Spearman rho between Q's mean reading of the code and the measured slant of the split's images:
whether Q reads the code the same way on real digits of every class.

With `--readers`, it prints how Q's reading of each continuous code moves per unit of each code and
per unit of a pure shear of the generated digits (`shear` of benchmarks/factor_measures.py), and the
same for the anchor (`improved.continuous_anchor`) where the checkpoint holds one: whether a reader
takes one code's change for another's, and whether it reads a code through the lean. It prints the
mean cos^2 between the codes' effects that the orthogonal term pays, too, over 256 latents, and the
mean of their signed cosine (an overlap made the same way at every latent) and of its size, and each
code's mean cosine with a pure shear's change of the same digits.

With `--joint`, it prints how slant goes with thickness and with width within each class over many
generated digits (the pooled within-class regression slope, degrees per pixel, and correlation),
drawn from the priors, again with each continuous code held at 0, and with every one held at 0 (z
alone), and how widely the digits of one class spread in slant, width and thickness (the pooled
within-class standard deviation); with `--real`, a prepared split (train.pt), the same over its
digits by their labels: whether a code reproduces the data's own dependence between two properties,
and how much of the data's spread each code and z give.

With `--trained`, every reading is of a training checkpoint's networks as trained rather than of
their moving average (`improved.ema_decay`), which lags them by a few hundred iterations.

With `--lean-alone`, it prints each code's rho and median change of slant, width and thickness over
render's sweep beside those its lean alone would give: each latent's digit at the code's 0 turned, or
sheared, to the slant the code gives it at each step. A shear leaves the deslanted width as it is and a rotation of a
leaning digit does not, so a slant code's width change that the rotation matches is the lean's own
geometry, and one far beyond it is a narrowing the code makes besides.

With `--turns`, a prepared split (train.pt), it prints how dependent Q's readings of c2 and c3 on
its digits are within Q's classes and over all (the two real-image dependence terms' measures) with
the two readings turned together by 0 to 165 degrees: a turn of two codes is another pair the
information term likes as well, so a least value away from 0 would point at a better pair. Then each
code's rho and change with slant, width and thickness and render's names, as trained and turned as
`improved.continuous_turn_every` would turn it on the split (the training split, as training does).

With `--final-turn`, each code's rho and change with slant, width and thickness and render's names,
as trained and turned as `improved.continuous_final_turn` turns it when training ends (the codes'
least mixed second derivative, `final_turn`): what that option would have made of a model trained
without it.

With `--stroke-alone`, the same for each code's stroke: its slant, width and thickness beside those
of each latent's digit at the code's 0 thickened or thinned as far as the code changes its thickness,
by a square pen (3x3) and by a round one (the 3x3 cross). A thicker square pen straightens a leaning
digit as the ink's shear reads it, the round one much less; render's slant, read from the digits'
one-pixel skeletons, leaves the pen's width out. Each line gives the ink's shear too (`ink_slant`),
so a thickness code's lean can be told from what a pen alone does to that reading.

With `--digits`, a prepared labelled split (train.pt), it prints for each code the share of latents
whose digit changes along its sweep over the prior's range, read by render's independent digit
classifier trained on that split (evaluation only), and each digit's median change of slant and
width over the sweep (the digit read at the code's 0): whether a code changes which digit G draws,
as a code learned before the categorical code has the classes may, and which digits carry a code's
width change.

With `--pools`, it prints for each code and each class of the first categorical code the mean cosine
of the code's effect on the image (dG/dc, averaged over pool x pool pixel blocks) with its effect at
the same latents drawn as each other class: what `improved.continuous_class_agreement` reads at pool
4, a class turned the other way reading below the rest.
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from infogan.data.images import load_split, to_uint8
from infogan.evaluation.digit_classifier import predict_digits
from infogan.evaluation.factors import (
    PROPERTIES,
    SWEEP_STEPS,
    change_key,
    correlation_key,
    factor_effects,
    factor_names,
    ink_slant,
    per_column_spearman,
    prior_range,
    sweep_effect,
    sweep_measurements,
)
from infogan.evaluation.metrics import (
    categorical_code_matching,
    continuous_readings_and_classes,
    predict_continuous,
)
from infogan.evaluation.registry import render_digit_classifier
from infogan.evaluation.traversal import continuous_traversal
from infogan.model.infogan import InfoGAN
from infogan.model.load import load_model, read_checkpoint
from infogan.model.losses import (
    block_directions,
    code_changes,
    code_effects,
    continuous_class_dependence,
    continuous_dependence,
    effect_cosines,
    least_dependent_turn,
    plane_turn,
)
from infogan.training.module import final_turn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: benchmarks/ is found from the root
from benchmarks.factor_measures import WITH_INK_SLANT, Measures, cross_pen, rotate, shear, soft_thicken
from pipeline.params import shipped_render

Reader = tuple[torch.nn.Module, torch.nn.Module]  # D's trunk and Q's head


def code_leans(model: InfoGAN, n_samples: int = 100, seed: int = 0) -> list[dict[str, float]]:
    """One row per continuous code: right (the share of latents leaning right at the code's 0),
    median_lean (degrees), slant_rho, slant_rho_right, slant_rho_left (NaN where no latent leans that
    way), slant_change (degrees) and width_change (pixels), as render's factor metrics count them;
    class_rho, the mean slant rho of the latents of each class of the first categorical code."""
    classes = model.codes.categorical_sizes[0] if model.codes.categorical_sizes else 1
    rows = []
    for code in range(model.codes.n_continuous):
        measured = sweep_measurements(model, code, n_samples, seed)
        slant, width = measured["slant"], measured["width"]
        rho, leans = per_column_spearman(slant), slant[len(slant) // 2]
        right = leans > 0

        def mean(selected: np.ndarray) -> float:
            return float(np.nanmean(selected)) if np.isfinite(selected).any() else float("nan")

        rows.append(
            {
                "right": float(right.mean()),
                "median_lean": float(np.median(leans)),
                "slant_rho": mean(rho),
                "slant_rho_right": mean(rho[right]),
                "slant_rho_left": mean(rho[~right]),
                "slant_change": float(np.median(slant[-1] - slant[0])),
                "width_change": float(np.median(width[-1] - width[0])),
                "class_rho": [mean(rho[k::classes]) for k in range(classes)],
            }
        )
    return rows


def effect_cosine_summary(model: InfoGAN, latents: torch.Tensor) -> tuple[float, float, float]:
    """The cosines between the continuous codes' effects on the image at each of `latents` (central
    differences, as the orthogonal term and `improved.continuous_shared_effect` take them), from one
    set of generator passes: the mean cos^2 over every pair (what the orthogonal term pays), and for
    c2 and c3 the mean cosine, signed (a share of one code's change that the other makes the same way
    at every latent), and the mean of its size (which overlap of either sign raises)."""
    effects = code_effects(model.generator, latents, model.codes.n_continuous)
    cosines = effect_cosines(effects)  # (pairs, B), (c2, c3) first
    return float(cosines.square().mean()), float(cosines[0].mean()), float(cosines[0].abs().mean())


def shear_cosines(model: InfoGAN, latents: torch.Tensor, step: float = 0.1) -> list[tuple[float, float]]:
    """For each continuous code, the cosine between its effect on the image at each of `latents` (as
    `effect_cosine_summary` takes it) and a pure shear's change of the same generated digit (x += s * y,
    s = +-`step` / 2): its mean, signed, and the mean of its size. A code that leans the digits the same
    way everywhere meets the shear at a mean away from 0, whatever the other code does."""
    n = model.codes.n_continuous
    with torch.no_grad():
        changes = code_changes(model.generator, latents[None], n, n, step)[0].flatten(2)  # (codes, B, pixels)
        ink = (model.generator(latents).float() + 1) / 2  # the generator's tanh range to [0, 1], as shear takes it
        sheared = ((shear(ink, step / 2) - shear(ink, -step / 2)) * 2).flatten(1)
    cosines = torch.nn.functional.cosine_similarity(changes, sheared[None], dim=2)  # (codes, B)
    return [(float(c.mean()), float(c.abs().mean())) for c in cosines]


def sweep_effects(frames: list[torch.Tensor], measures: Measures = PROPERTIES) -> dict[str, tuple[float, float]]:
    """{property: (mean per-latent Spearman rho over the sweep, median change from its first step to its
    last)} for a sweep of uint8 image batches, one per step, as render's factor metrics take them, for
    each of `measures`."""
    return {
        name: sweep_effect(torch.stack([measure(images) for images in frames]).numpy())  # (steps, N)
        for name, measure in measures.items()
    }


def sweep_and_middle(model: InfoGAN, code: int, n_samples: int, seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Render's sweep of code `code` over its prior's range (SWEEP_STEPS uint8 image batches) on
    `n_samples` latents, and the same latents' images at the code's 0."""
    values = np.linspace(*prior_range(model), SWEEP_STEPS).tolist()
    frames = [frame.images for frame in continuous_traversal(model, code, [*values, 0.0], n_samples, seed)]
    return frames[:-1], frames[-1]


def made_alone(
    model: InfoGAN,
    code: int,
    matched: str,
    ways: dict[str, Callable[[torch.Tensor, float], torch.Tensor]],
    levels: np.ndarray,
    n_samples: int = 100,
    seed: int = 0,
    measures: Measures = PROPERTIES,
) -> dict[str, dict[str, tuple[float, float]]]:
    """{"code": each of `measures`' (rho, median change) over render's sweep of code `code`; each name of
    `ways`: the same when each latent's digit at the code's 0 is instead transformed that way (ink in
    [0, 1], one of `levels`) to the level whose `matched` property is nearest the one the code gives
    it at each step}: what the code's change of `matched` alone does to the other properties."""
    frames, middle = sweep_and_middle(model, code, n_samples, seed)
    ink, found = middle.float() / 255, {"code": sweep_effects(frames, measures)}
    measure, latents = PROPERTIES[matched], torch.arange(len(middle))
    for name, way in ways.items():
        moved = torch.stack([to_uint8(way(ink, float(level)) * 2 - 1) for level in levels])  # (levels, N, C, H, W)
        reached = measure(moved.flatten(0, 1)).view(len(levels), -1)
        made = [moved[(reached - measure(step)).abs().argmin(0), latents] for step in frames]
        found[name] = sweep_effects(made, measures)
    return found


def lean_alone_changes(
    model: InfoGAN, code: int, n_samples: int = 100, seed: int = 0, angles: np.ndarray | None = None
) -> dict[str, dict[str, tuple[float, float]]]:
    """Whether a code's width and thickness changes come with its lean's geometry or are its own.
    {"code": each property's (rho, median change) over render's sweep of the code; "rotation",
    "shear": the same when each latent's digit at the code's 0 is instead turned, or sheared, to the
    slant the code gives it at each step (the nearest of `angles`, degrees)}. A rotation widens or
    narrows the deslanted digit (docs/model.md), a shear does not: a code whose width change a
    rotation of the same lean matches is a rotation, not a mix of slant and width."""
    leans = {
        "rotation": lambda ink, degrees: rotate(ink, -degrees),  # rotate turns the top to the left for degrees > 0
        "shear": lambda ink, degrees: shear(ink, float(np.tan(np.radians(degrees)))),
    }
    angles = np.linspace(-45, 45, 91) if angles is None else angles
    return made_alone(model, code, "slant", leans, angles, n_samples, seed)


def stroke_alone_changes(
    model: InfoGAN, code: int, n_samples: int = 100, seed: int = 0, measures: Measures = PROPERTIES
) -> dict[str, dict[str, tuple[float, float]]]:
    """Whether a code's slant change comes with its stroke: as `lean_alone_changes`, with each latent's
    digit at the code's 0 thickened or thinned ("pen": up to one 3x3 dilation or erosion, blended in
    steps of 1/20; "round pen": the same by the 3x3 cross) to the thickness the code gives it. The
    square pen straightens a leaning digit as the ink's shear reads it and the cross much less
    (docs/model.md), so where `measures` holds benchmarks/factor_measures.py's "ink slant", a
    thickness code's rho in it that the pens alone match is that measure's, not a lean the code makes."""
    pen = {"pen": soft_thicken, "round pen": functools.partial(soft_thicken, pen=cross_pen)}
    levels = np.linspace(-1, 1, 41)
    return made_alone(model, code, "thickness", pen, levels, n_samples, seed, measures)


def alone_line(found: dict[str, dict[str, tuple[float, float]]], made_by: str) -> str:
    """`made_alone`'s findings on one line: each property's rho (median change), for the code and each way."""
    return "rho (median change): " + "; ".join(
        f"{'the code' if how == 'code' else made_by + how}: "
        + ", ".join(f"{name} {rho:+.2f} ({change:+.2f})" for name, (rho, change) in effects.items())
        for how, effects in found.items()
    )


def digit_changes(
    model: InfoGAN, classifier: torch.nn.Module, code: int, n_samples: int = 500, seed: int = 0
) -> tuple[float, dict[int, tuple[int, float, float]]]:
    """Code `code` swept over its prior's range (as render's factor metrics sweep it) on `n_samples`
    latents, each image's digit read by `classifier`: (the share of latents whose digit is not the
    same at every step, {digit at the code's 0: (latents, median change of slant in degrees, of width
    in pixels, first step to last)})."""
    frames, middle = sweep_and_middle(model, code, n_samples, seed)
    read = torch.stack([predict_digits(classifier, images) for images in frames])  # (steps, N)
    changed = float((read != read[0]).any(dim=0).float().mean())
    first, last = frames[0], frames[-1]
    slant = PROPERTIES["slant"](last) - PROPERTIES["slant"](first)
    width = PROPERTIES["width"](last) - PROPERTIES["width"](first)
    at_zero = predict_digits(classifier, middle)
    per_digit = {
        int(d): (int((at_zero == d).sum()), float(slant[at_zero == d].median()), float(width[at_zero == d].median()))
        for d in at_zero.unique()
    }
    return changed, per_digit


def class_effect_cosines(model: InfoGAN, code: int, pool: int, n_samples: int = 64, seed: int = 0) -> list[float]:
    """For each class k of the first categorical code, the mean over `n_samples` latents (z and the
    continuous codes from the prior, seeded) and over the other classes j of the cosine between code
    `code`'s effect on the image at the latent drawn as class k and as class j, each averaged over
    `pool` x `pool` pixel blocks (infogan/model/losses.py, code_changes and block_directions)."""
    codes = model.codes
    latent = codes.sample(n_samples, generator=torch.Generator().manual_seed(seed))
    noise, classes = latent.vector[:, : codes.noise_dim], codes.categorical_sizes[0]
    vectors = torch.stack(
        [
            codes.assemble(noise, torch.full_like(latent.categorical, k), latent.continuous).vector
            for k in range(classes)
        ]
    )
    with torch.no_grad():
        changes = code_changes(model.generator, vectors, codes.n_continuous, code + 1, 0.1)[:, code]
    effects = block_directions(changes, pool)  # (classes, latents, cells), as the class term reads them
    cosines = torch.einsum("ibp,jbp->ij", effects, effects) / n_samples  # mean over latents
    return [float((cosines[k].sum() - cosines[k, k]) / (classes - 1)) for k in range(classes)]


def anchor_reader(path: Path, model: InfoGAN) -> Reader | None:
    """The anchor's trunk and Q head from a training checkpoint's state dict, in copies of `model`'s
    networks; None where the checkpoint holds no anchor."""
    state = read_checkpoint(path)["state_dict"]
    reader = (copy.deepcopy(model.trunk), copy.deepcopy(model.q_head))
    for part, name in zip(reader, ("trunk", "q_head"), strict=True):
        prefix = f"anchor.{name}."
        weights = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
        if not weights:
            return None
        part.load_state_dict(weights)
    return reader


def reading_responses(
    model: InfoGAN, reader: Reader | None = None, n_samples: int = 256, seed: int = 1, step: float = 0.1
) -> np.ndarray:
    """(n_continuous + 1, n_continuous): row j < n_continuous, the mean over `n_samples` latents of the
    change of the reader's reading (mean) of each continuous code per unit of code j, by central
    differences of `step`; the last row, per unit of a pure shear of the generated digits (x += s * y,
    s = +-`step` / 2). `reader`: (trunk, q_head), Q's own by default. Its batch-norm layers normalise
    with batch statistics, as in training, and each + and - pair goes through as one batch, so that
    the statistics do not take a step shared by the whole batch out again. The reader is a copy: its
    running statistics are left as they were."""
    trunk, head = copy.deepcopy(reader or (model.trunk, model.q_head))
    trunk.train()
    head.train()
    codes = model.codes
    vector = codes.sample(n_samples, generator=torch.Generator().manual_seed(seed)).vector
    first = vector.shape[1] - codes.n_continuous

    def difference(images: torch.Tensor, size: float) -> torch.Tensor:  # images: the + half, then the - half
        readings = head(trunk(images)).continuous_mean.float()
        return ((readings[:n_samples] - readings[n_samples:]) / (2 * size)).mean(0)

    rows = []
    with torch.no_grad():
        for code in range(codes.n_continuous):
            moved = vector.new_zeros(vector.shape)
            moved[:, first + code] = step
            rows.append(difference(model.generator(torch.cat((vector + moved, vector - moved))), step))
        ink = (model.generator(vector).float() + 1) / 2  # the generator's tanh range to [0, 1], as shear takes it
        sheared = torch.cat((shear(ink, step / 2), shear(ink, -step / 2))) * 2 - 1
        rows.append(difference(sheared, step / 2))
    return torch.stack(rows).numpy()


def class_centred(values: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Each value less the mean of its class's values."""
    means = torch.bincount(classes, weights=values) / torch.bincount(classes).clamp_min(1)
    return values - means[classes]


def within_class_slope(y: torch.Tensor, x: torch.Tensor, classes: torch.Tensor) -> tuple[float, float]:
    """The pooled within-class least-squares slope of y on x, and their correlation, each value taken
    from its class's mean."""
    y, x = class_centred(y.double(), classes), class_centred(x.double(), classes)
    return float(y @ x / (x @ x)), float(torch.corrcoef(torch.stack((y, x)))[0, 1])


# What the data's own slant dependence and spread are read with: render's width and thickness, and the
# ink's shear for slant (`ink_slant`: the slant rounds 26-31 of docs/digits.md read, and the one
# benchmarks/unleaned_mnist.py shears out)
DATA_MEASURES: Measures = {**PROPERTIES, "slant": ink_slant}


def slant_dependence(
    images: torch.Tensor, classes: torch.Tensor, slant: Callable[[torch.Tensor], torch.Tensor] = ink_slant
) -> dict[str, tuple[float, float]]:
    """uint8 (N, 1, H, W) digits and their classes -> {property: (slope, correlation)} for thickness and
    width: `within_class_slope` of slant on the property (degrees per pixel), by DATA_MEASURES, or with
    `slant` in place of its slant (render's `skeleton_slant`)."""
    measured = {name: measure(images) for name, measure in {**DATA_MEASURES, "slant": slant}.items()}
    return {name: within_class_slope(measured["slant"], measured[name], classes) for name in ("thickness", "width")}


def within_class_spread(images: torch.Tensor, classes: torch.Tensor) -> dict[str, float]:
    """uint8 (N, 1, H, W) digits and their classes -> {property: its pooled within-class standard
    deviation} (degrees or pixels), by DATA_MEASURES: how widely the digits of one class spread in each
    property."""
    return {
        name: float(class_centred(measure(images).double(), classes).square().mean().sqrt())
        for name, measure in DATA_MEASURES.items()
    }


def generated_digits(
    model: InfoGAN, held: Sequence[int] = (), n_samples: int = 6000, seed: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n_samples` uint8 digits drawn from the priors (seeded) with the continuous codes in `held` at 0
    in every latent, and the class of the first categorical code of each."""
    latent = model.codes.sample(n_samples, generator=torch.Generator().manual_seed(seed))
    vector = latent.vector.clone()
    for code in held:
        vector[:, vector.shape[1] - model.codes.n_continuous + code] = 0
    with torch.no_grad():
        images = torch.cat([to_uint8(model.generator(part)) for part in vector.split(500)])
    return images, latent.categorical[:, 0]


def reading_slant_rho(model: InfoGAN, images: torch.Tensor, labels: torch.Tensor) -> list[dict[int, float]]:
    """Per continuous code, {digit: Spearman rho between Q's mean reading of the code and the measured
    slant} over the uint8 `images` of each label."""
    readings = predict_continuous(model, images).numpy()
    slant, labels = ink_slant(images).numpy(), labels.numpy()
    return [
        {int(d): float(spearmanr(readings[labels == d, code], slant[labels == d])[0]) for d in np.unique(labels)}
        for code in range(readings.shape[1])
    ]


def reading_turn_dependence(
    readings: torch.Tensor,
    classes: torch.Tensor,
    n_classes: int,
    degrees: Sequence[float] = tuple(range(0, 180, 15)),
) -> list[tuple[float, float, float]]:
    """Q's mean readings of c2 and c3 (`readings`, (N, n_continuous)) with its classes of the same
    images (`continuous_readings_and_classes`), turned together by each of `degrees` in the plane of
    the two codes: (degrees, `continuous_class_dependence` within the classes, `continuous_dependence`
    over all). A turn of two codes is another pair of codes as likely under the information term;
    where the within-class value is least away from 0 (or 90), the turn reads the real digits'
    factors as more independent than the codes as trained do."""
    rows = []
    for angle in degrees:
        turned = readings[:, :2] @ plane_turn(2, 0, 1, angle).T
        rows.append(
            (
                angle,
                float(continuous_class_dependence(turned, classes, n_classes)),
                float(continuous_dependence(turned)),
            )
        )
    return rows


def turned_model(model: InfoGAN, readings: torch.Tensor, classes: torch.Tensor) -> tuple[InfoGAN, list[float]]:
    """A copy of `model` with its continuous codes turned as `improved.continuous_turn_every` would turn
    them, given Q's readings and classes of the real images (`continuous_readings_and_classes`):
    `least_dependent_turn` within the classes, a degree apart; and each pair's angle."""
    turn, angles = least_dependent_turn(readings, classes, model.codes.categorical_sizes[0])
    return turned_copy(model, turn), angles


def turned_copy(model: InfoGAN, turn: torch.Tensor) -> InfoGAN:
    """A copy of `model` with its continuous codes turned by `turn` (`InfoGAN.turn_continuous`)."""
    turned = copy.deepcopy(model)
    turned.turn_continuous(turn)
    return turned


def effects_line(model: InfoGAN) -> str:
    """Each continuous code's rho and change for slant, width and thickness over render's latents, and
    the names render's rule gives them, all as params.yaml's `render` section sets them."""
    render, n = shipped_render(), model.codes.n_continuous
    effects = factor_effects(model, render.factor_samples, render.seed)
    codes = [
        f"c{j + 2} "
        + ", ".join(
            f"{name} {effects[correlation_key(j, name)]:+.2f} ({effects[change_key(j, name)]:+.2f})"
            for name in PROPERTIES
        )
        for j in range(n)
    ]
    names = factor_names(effects, n, render.factor_name_min_rho, render.factor_name_max_other_rho)
    return "; ".join(codes) + f"; names {', '.join(f'c{j + 2} {name}' for j, name in names.items()) or 'none'}"


def class_name(k: int, digits: dict[int, int]) -> str:
    """Class k, with the digit matching gives it where `digits` has one: "3=5" or "3"."""
    return f"{k}={digits[k]}" if k in digits else str(k)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", type=Path, nargs="+", help="model.ckpt files (a train or sweep output)")
    p.add_argument("--test", type=Path, help="a prepared labelled split (test.pt) to name each class's digit")
    p.add_argument("--pools", type=int, nargs="+", default=[], help="block sizes for each class's effect cosines")
    p.add_argument("--joint", action="store_true", help="slant against thickness and width within classes")
    p.add_argument("--real", type=Path, help="with --joint: a prepared split (train.pt) to read the same of")
    p.add_argument(
        "--turns", type=Path, help="a prepared split (train.pt): Q's readings of it turned in the c2-c3 plane"
    )
    p.add_argument(
        "--lean-alone",
        action="store_true",
        help="each code's width change beside a rotation's and a shear's of its lean",
    )
    p.add_argument(
        "--stroke-alone",
        action="store_true",
        help="each code's slant change beside a pen's that changes the stroke as much",
    )
    p.add_argument(
        "--digits", type=Path, help="a prepared labelled split (train.pt): which digit each code's sweep draws"
    )
    p.add_argument(
        "--readers", action="store_true", help="how Q's and the anchor's readings move with each code and a shear"
    )
    p.add_argument("--names", action="store_true", help="each code's rhos and changes, and the names render gives")
    p.add_argument(
        "--final-turn",
        action="store_true",
        help="the names before and after the turn improved.continuous_final_turn would give the model",
    )
    p.add_argument(
        "--trained", action="store_true", help="read a training checkpoint's networks as trained, not their average"
    )
    args = p.parse_args()
    test = load_split(args.test) if args.test else None
    classifier = render_digit_classifier(shipped_render(), args.digits) if args.digits else None

    def joint_line(images: torch.Tensor, classes: torch.Tensor) -> str:
        found, spread = slant_dependence(images, classes), within_class_spread(images, classes)
        return (
            "slant within classes "
            + ", ".join(f"on {name} {slope:+.2f} deg/px (r {r:+.3f})" for name, (slope, r) in found.items())
            + f"; spread within classes: slant {spread['slant']:.2f} deg, width {spread['width']:.2f} px, "
            f"thickness {spread['thickness']:.3f} px"
        )

    if args.joint and args.real:
        print(f"{args.real}: {joint_line(*load_split(args.real))}")
    for path in args.checkpoints:
        model = load_model(path, trained=args.trained)
        digits, reading = {}, None
        if test is not None:
            digits = categorical_code_matching(model, *test)[1]
            reading = reading_slant_rho(model, *test)
        for code, row in enumerate(code_leans(model)):
            print(
                f"{path} c{code + 2}: {row['right']:.0%} lean right at 0 (median {row['median_lean']:+.1f} deg); "
                f"slant rho {row['slant_rho']:+.2f} (right {row['slant_rho_right']:+.2f}, "
                f"left {row['slant_rho_left']:+.2f}); change slant {row['slant_change']:+.1f} deg, "
                f"width {row['width_change']:+.2f} px"
            )
            per_class = ", ".join(f"{class_name(k, digits)}: {rho:+.2f}" for k, rho in enumerate(row["class_rho"]))
            print(f"    slant rho per class (class=digit): {per_class}")
            if reading is not None:
                per_digit = ", ".join(f"{d}: {rho:+.2f}" for d, rho in reading[code].items())
                print(f"    Q's reading against the measured slant of real digits, per digit: {per_digit}")
            for pool in args.pools:
                cosines = ", ".join(
                    f"{class_name(k, digits)}: {cos:+.2f}"
                    for k, cos in enumerate(class_effect_cosines(model, code, pool))
                )
                print(f"    mean cos of each class's effect with the others', {pool}x{pool} blocks: {cosines}")
        if args.names:
            print(f"{path}: {effects_line(model)}")
        if args.final_turn:
            turn, angles = final_turn(model)
            turned = turned_copy(model, turn)
            print(f"{path} as trained: {effects_line(model)}")
            print(f"{path} finally turned {', '.join(f'{a:+.1f}' for a in angles)} deg: {effects_line(turned)}")
        if args.turns:
            readings, classes = continuous_readings_and_classes(model, load_split(args.turns)[0])  # one pass
            turns = reading_turn_dependence(readings, classes, model.codes.categorical_sizes[0])
            print(
                f"{path} Q's readings of {args.turns} turned (degrees: within classes, over all): "
                + ", ".join(f"{angle:.0f}: {within:.4f}, {pooled:.4f}" for angle, within, pooled in turns)
            )
            turned, angles = turned_model(model, readings, classes)
            print(f"{path} as trained: {effects_line(model)}")
            print(f"{path} turned {', '.join(f'{a:+.0f}' for a in angles)} deg: {effects_line(turned)}")
        if args.lean_alone:
            for code in range(model.codes.n_continuous):
                print(f"{path} c{code + 2}, {alone_line(lean_alone_changes(model, code), 'its lean by ')}")
        if args.stroke_alone:
            for code in range(model.codes.n_continuous):
                found = stroke_alone_changes(model, code, measures=WITH_INK_SLANT)
                print(f"{path} c{code + 2}, {alone_line(found, 'its stroke by the ')}")
        if classifier is not None:
            for code in range(model.codes.n_continuous):
                changed, per_digit = digit_changes(model, classifier, code)
                print(
                    f"{path} c{code + 2}: the digit changes along the sweep on {changed:.0%} of latents; per digit "
                    "at 0 (latents: slant deg, width px): "
                    + ", ".join(f"{d} ({n}: {s:+.1f}, {w:+.2f})" for d, (n, s, w) in per_digit.items())
                )
        if args.joint:
            every = tuple(range(model.codes.n_continuous))
            for held in ((), *((code,) for code in every), every):
                drawn = "with " + ", ".join(f"c{code + 2}" for code in held) + " at 0" if held else "from the priors"
                print(f"{path} generated, {drawn}: {joint_line(*generated_digits(model, held))}")
        if args.readers:
            latents = model.codes.sample(256, generator=torch.Generator().manual_seed(1)).vector
            with torch.no_grad():
                overlap, signed, size = effect_cosine_summary(model, latents)
            print(
                f"{path} cos^2 of the codes' effects (the orthogonal term): {overlap:.4f}; their cosine's mean over "
                f"latents {signed:+.4f}, its mean size {size:.4f}"
            )
            with_shear = ", ".join(
                f"c{j + 2} {signed:+.4f} (size {size:.4f})"
                for j, (signed, size) in enumerate(shear_cosines(model, latents))
            )
            print(f"{path} cosine of each code's effect with a pure shear's change, mean over latents: {with_shear}")
            readers = {"Q": None}
            anchor = anchor_reader(path, model)
            if anchor is not None:
                readers["anchor"] = anchor
            moved_by = [f"c{j + 2}" for j in range(model.codes.n_continuous)] + ["shear"]
            for name, reader in readers.items():
                for j, row in zip(moved_by, reading_responses(model, reader), strict=True):
                    per_code = ", ".join(f"c{i + 2} {value:+.3f}" for i, value in enumerate(row))
                    print(f"{path} {name}'s readings per unit of {j}: {per_code}")


if __name__ == "__main__":
    main()
