"""Do the factor measures read what they claim? Known transformations of real MNIST digits, measured.

    python benchmarks/factor_measures.py --raw-dir data/raw/mnist [--split train] [--rotations]

Render names a continuous code after slant, width or thickness from the per-latent Spearman
correlation between the code and each measure (infogan/evaluation/factors.py, docs/model.md). Here
the "code" is a known transformation instead: each of `--images` digits is sheared, stretched (along
the image's x axis, or across the digit's own axis), rotated or thickened in 9 steps, and the same
correlation is taken for every measure, and for the shear of the ink itself (`ink_slant`, render's
slant until it read the skeleton's, which reads a thicker pen as less lean). A measure should follow
its own transformation (|rho| near 1) and ignore the others (near 0); where it does not, a code doing
that transformation would be read as moving that property too. Prints one row per transformation:
each measure's mean rho and its mean change over the sweep; then cos^2 between a shear's change to
the image and each stretch's, and both slants' rho for each stretch and each pen's thickening on the
digits leaning each way; last, the mean cosine and cos^2 between a shear's change and a thickening's
that leans the digits 0, 1.2 or 2.4 degrees.
With `--rotations`, over the whole split: how the dependence terms on Q's readings of real digits
score slant and width (or thickness) as two codes, and turned into mixes of the two.
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from infogan.data.mnist import load_mnist_split
from infogan.evaluation.factors import PROPERTIES, ink_moments, ink_slant, neighbours, per_column_spearman
from infogan.model.losses import continuous_class_dependence, continuous_dependence

Transform = Callable[[torch.Tensor, float], torch.Tensor]
Measures = dict[str, Callable[[torch.Tensor], torch.Tensor]]
Pen = Callable[[torch.Tensor, bool], torch.Tensor]  # one dilation (True) or erosion of the ink


def affine(images: torch.Tensor, matrix: Sequence[Sequence[float]] | torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) float ink in [0, 1], resampled so that output point p reads input point matrix @ p
    (coordinates from -1 to 1 across the image, x right, y down). `matrix`: one 2x2 for every image, or
    an (N, 2, 2) tensor, one per image."""
    matrix = torch.as_tensor(matrix, dtype=images.dtype).expand(len(images), 2, 2)
    theta = torch.cat([matrix, matrix.new_zeros(len(images), 2, 1)], dim=2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shear(images: torch.Tensor, s: float) -> torch.Tensor:
    """Lean right by s: a point at height y (up) moves s * y to the right."""
    return affine(images, [[1.0, s], [0.0, 1.0]])


def stretch(images: torch.Tensor, k: float) -> torch.Tensor:
    """Widen by the factor k about the centre."""
    return affine(images, [[1.0 / k, 0.0], [0.0, 1.0]])


def stretch_in_frame(images: torch.Tensor, k: float) -> torch.Tensor:
    """Widen by the factor k across each digit's own axis: shear its slant out, widen, shear it back in.
    The slant is the one the measures read (mu11 / mu02, x per y up); upright digits just widen."""
    _, mu11, mu02 = ink_moments((images * 255).round().to(torch.uint8))
    lean = (mu11 / mu02.clamp_min(1e-6)).to(images.dtype)
    eye = torch.eye(2, dtype=images.dtype).expand(len(images), 2, 2)
    deslant, reslant = eye.clone(), eye.clone()
    deslant[:, 0, 1], reslant[:, 0, 1] = -lean, lean
    widen = torch.tensor([[1.0 / k, 0.0], [0.0, 1.0]], dtype=images.dtype)
    return affine(images, deslant @ widen @ reslant)  # read back through the three, the last one first


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Turn by `degrees` about the centre, counter-clockwise (the top to the left) for degrees > 0."""
    t = math.radians(degrees)
    return affine(images, [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


def square_pen(images: torch.Tensor, dilate: bool) -> torch.Tensor:
    """One dilation (or erosion) of the ink by the 3x3 square: each pixel takes the largest (smallest)
    of its 3x3 neighbourhood."""
    return F.max_pool2d(images, 3, 1, 1) if dilate else -F.max_pool2d(-images, 3, 1, 1)


def cross_pen(images: torch.Tensor, dilate: bool) -> torch.Tensor:
    """One dilation (or erosion) of the ink by the 3x3 cross, the roundest pen a 3x3 grid holds: each
    pixel takes the largest (smallest) of itself and its four edge neighbours. The square reaches
    further along the diagonals, which straightens a leaning digit as its ink moments read it
    (docs/model.md)."""
    stacked = torch.stack(neighbours(images, ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))))
    return stacked.amax(0) if dilate else stacked.amin(0)


def thicken(images: torch.Tensor, steps: float, pen: Pen = square_pen) -> torch.Tensor:
    """`steps` dilations (> 0) or erosions (< 0) of the ink by `pen`."""
    for _ in range(abs(int(steps))):
        images = pen(images, steps > 0)
    return images


WITH_INK_SLANT: Measures = {**PROPERTIES, "ink slant": ink_slant}

SWEEPS: dict[str, tuple[Transform, list[float]]] = {
    "shear -0.4..0.4": (shear, np.linspace(-0.4, 0.4, 9).tolist()),
    "shear 0..0.4": (shear, np.linspace(0.0, 0.4, 9).tolist()),
    "rotate -20..20 deg": (rotate, np.linspace(-20, 20, 9).tolist()),
    "rotate 0..25 deg": (rotate, np.linspace(0, 25, 9).tolist()),
    "stretch 0.75..1.25": (stretch, np.linspace(0.75, 1.25, 9).tolist()),
    "in-frame stretch": (stretch_in_frame, np.linspace(0.75, 1.25, 9).tolist()),
    "erode, keep, dilate": (thicken, [-1.0, 0.0, 1.0]),
    "the same by a cross": (functools.partial(thicken, pen=cross_pen), [-1.0, 0.0, 1.0]),
}
# the sweeps that should leave slant alone, whose slant rho main also splits by the digits' lean
LEAN_SPLIT = ("stretch 0.75..1.25", "in-frame stretch", "erode, keep, dilate", "the same by a cross")


def transformation_correlations(
    images: torch.Tensor, transform: Transform, values: Sequence[float], measures: Measures = PROPERTIES
) -> dict[str, tuple[float, float]]:
    """uint8 (N, 1, H, W) digits -> {property: (mean per-digit Spearman rho with the transformation's
    value, mean change of the property from the first value to the last)}, for each of `measures`."""
    ink = images.float() / 255
    swept = torch.stack([(transform(ink, v).clamp(0, 1) * 255).round().to(torch.uint8) for v in values])
    out = {}
    for name, measure in measures.items():
        measured = measure(swept.flatten(0, 1)).view(len(values), -1).numpy()
        rho = per_column_spearman(measured)
        out[name] = (float(np.nanmean(rho)), float(np.mean(measured[-1] - measured[0])))
    return out


def change_overlap(images: torch.Tensor, first: Transform, second: Transform, step: float = 0.05) -> float:
    """The mean over digits of cos^2 between two transformations' changes to the image, each by central
    differences of `step` around no change (shear 0, stretch 1): what the orthogonal-effects term
    (`improved.continuous_orthogonal`) reads of two codes that turn them."""
    ink = images.float() / 255
    rest = {shear: 0.0, stretch: 1.0, stretch_in_frame: 1.0}
    changes = [(t(ink, rest[t] + step) - t(ink, rest[t] - step)).flatten(1) for t in (first, second)]
    return float(F.cosine_similarity(*changes, dim=1).square().mean())


def soft_thicken(images: torch.Tensor, t: float, pen: Pen = square_pen) -> torch.Tensor:
    """Thicken by a fraction t of one dilation (t > 0) or erosion (t < 0) by `pen`, |t| <= 1: a blend of
    the image and its dilated or eroded copy, so that a thickness can change by less than a step."""
    return (1 - abs(t)) * images + abs(t) * pen(images, t > 0)


def leaning_thickening_overlap(
    images: torch.Tensor, lean_degrees: float, shear_degrees: float = 44.0
) -> tuple[float, float]:
    """A thickening (half a 3x3 erosion to half a dilation) that also leans the digits left by
    `lean_degrees` over that range, against a shear that leans them right by `shear_degrees`: the mean
    over digits of the cosine between the two changes, and of its square. The signed mean is what
    `improved.continuous_shared_effect` pays, the square what `improved.continuous_orthogonal` pays."""
    ink = images.float() / 255
    slant, lean = (math.tan(math.radians(d / 2)) for d in (shear_degrees, lean_degrees))
    sheared = shear(ink, slant) - shear(ink, -slant)
    thickened = shear(soft_thicken(ink, 0.5), -lean) - shear(soft_thicken(ink, -0.5), lean)
    cosines = F.cosine_similarity(sheared.flatten(1), thickened.flatten(1), dim=1)
    return float(cosines.mean()), float(cosines.square().mean())


def rotation_dependence(
    images: torch.Tensor,
    labels: torch.Tensor,
    other: str,
    degrees: Sequence[float],
    batches: int = 200,
    batch: int = 128,
) -> list[tuple[float, float, float]]:
    """The digits' slant and `other` property, each standardised, read as two codes turned by each of
    `degrees` (0: slant and `other` themselves; 45: their sum and difference): for each angle, the mean
    over `batches` random batches of `batch` digits of `continuous_dependence` over the batch (what
    `improved.real_continuous_dependence` charges) and of `continuous_class_dependence` within the
    digits' classes (what `improved.real_continuous_class_dependence` charges, there with Q's classes;
    the labels stand in for them here). A term that singles out the factors scores angle 0 lowest."""
    measured = [PROPERTIES[name](images) for name in ("slant", other)]
    first, second = ((v - v.mean()) / v.std() for v in measured)
    draws = torch.Generator().manual_seed(0)
    picks = [torch.randint(0, len(images), (batch,), generator=draws) for _ in range(batches)]
    found = []
    for angle in degrees:
        t = math.radians(angle)
        codes = torch.stack(
            (math.cos(t) * first + math.sin(t) * second, -math.sin(t) * first + math.cos(t) * second), 1
        )
        pooled = sum(float(continuous_dependence(codes[i])) for i in picks) / batches
        within = sum(float(continuous_class_dependence(codes[i], labels[i], 10)) for i in picks) / batches
        found.append((angle, pooled, within))
    return found


def spread(images: torch.Tensor, n: int) -> torch.Tensor:
    """n of the images, evenly spaced over all of them (the test set's first few hundred lean right
    less often than the whole: 50% of the first 300, 63% of all 10,000)."""
    return images[torch.linspace(0, len(images) - 1, min(n, len(images))).long()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, default=Path("data/raw/mnist"), help="the four MNIST .gz files")
    p.add_argument("--images", type=int, default=300, help="this many digits, evenly spaced over the split")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument(
        "--rotations",
        action="store_true",
        help="then the dependence terms' reading of slant and width or thickness turned",
    )
    args = p.parse_args()
    images = spread(load_mnist_split(args.raw_dir, args.split)[0], args.images)
    leans = ink_slant(images)
    right = float((leans > 0).float().mean())
    print(
        f"{len(images)} MNIST {args.split} digits ({right:.0%} leaning right); "
        "mean per-digit Spearman rho (mean change over the sweep)"
    )
    print(f"{'transformation':22s}" + "".join(f"{name:>22s}" for name in WITH_INK_SLANT))
    for label, (transform, values) in SWEEPS.items():
        found = transformation_correlations(images, transform, values, WITH_INK_SLANT)
        print(f"{label:22s}" + "".join(f"{rho:+12.2f} ({change:+6.2f})" for rho, change in found.values()))
    by_lean = {
        label: [
            transformation_correlations(images[mask], *SWEEPS[label], WITH_INK_SLANT)
            for mask in (leans > 0, leans <= 0)
        ]
        for label in LEAN_SPLIT
    }
    overlaps = {t.__name__: change_overlap(images, shear, t) for t in (stretch, stretch_in_frame)}
    print("cos^2 of a shear's change with a stretch's: " + ", ".join(f"{k} {v:.3f}" for k, v in overlaps.items()))
    for label, (right, left) in by_lean.items():
        print(
            f"{label}: on the digits leaning right, left: slant rho {right['slant'][0]:+.2f}, {left['slant'][0]:+.2f}; "
            f"ink slant rho {right['ink slant'][0]:+.2f}, {left['ink slant'][0]:+.2f}"
        )
    for lean in (0.0, 1.2, 2.4):
        signed, squared = leaning_thickening_overlap(images, lean)
        print(
            f"a thickening leaning the digits {lean:.1f} deg against a 44 deg shear: mean cos {signed:+.4f}, "
            f"mean cos^2 {squared:.4f}"
        )
    if args.rotations:
        every, labels = load_mnist_split(args.raw_dir, args.split)
        print(
            f"all {len(every)} {args.split} digits, slant and another property standardised and turned, "
            "in batches of 128:"
        )
        for other in ("width", "thickness"):
            for angle, pooled, within in rotation_dependence(every, labels, other, (0, 15, 30, 45, 60, 75, 90)):
                print(
                    f"  slant and {other} turned {angle:2.0f} deg: dependence over the batch {pooled:.4f}, "
                    f"within the classes {within:.4f}"
                )


if __name__ == "__main__":
    main()
