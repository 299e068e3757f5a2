"""What each continuous code controls: the measured slant, width and stroke thickness of generated digits.

Each property is measured on uint8 images with bright ink on a dark ground, as in MNIST, from
central moments mu_pq (x to the right, y up):

- slant: the shear atan(mu11 / mu02), in degrees, of the digit's skeleton, so a digit leaning right
  ('/') has a positive slant. The skeleton is the digit binarised at half intensity and thinned to
  lines one pixel wide (Zhang and Suen's thinning, averaged with its mirror image's): a stroke of any
  width leaves the same centre line, so the pen's width is left out. The same shear read from the
  ink itself (`ink_slant`, the shear MNIST deskewing removes) reads a thicker pen as less lean,
  since a wide stroke's ink spreads across it too.
- width: the ink's horizontal spread once deslanted, sqrt(12 * (mu20 - mu11^2 / mu02)) pixels:
  the ink's horizontal variance once the shear x' = x - (mu11 / mu02) * y is taken out, scaled so
  that a filled upright bar of width w measures w. Slant alone leaves it unchanged; a wider 0 or a
  narrower 1 moves it.
- thickness: the mean stroke width in pixels, 2 * ink area / boundary length of the binarised digit
  (ink above half intensity; the boundary counted in pixel edges). A stroke of width w and length
  L >> w has area w*L and boundary about 2*L.

`factor_effects` sweeps each continuous code over its prior's range on a fixed batch of latents
(the other codes held fixed, the columns spread over the first categorical code's classes),
measures every image, and reports for each (code, property) two things: the Spearman correlation
between the code value and the property, computed per latent and averaged over the batch (how
steadily the code moves it; per latent, so that the differences between digits, a 1 thinner than an
8, do not dilute it), and the median over latents of the property's change from the bottom of the
range to the top, in degrees or pixels (how far the code moves it). `factor_names` names a code
after a property only when the evidence is clear (docs/model.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.stats import rankdata

from infogan.evaluation.traversal import continuous_traversal
from infogan.model.infogan import InfoGAN

SWEEP_STEPS = 9


def ink_moments(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 1, H, W) uint8 -> the ink's central moments (mu20, mu11, mu02), each (N,), in pixels^2, y up."""
    ink = images[:, 0].float() / 255
    h, w = ink.shape[1:]
    y = torch.arange(h - 1, -1, -1, dtype=ink.dtype).view(1, h, 1)  # up is positive
    x = torch.arange(w, dtype=ink.dtype).view(1, 1, w)
    mass = ink.sum((1, 2)).clamp_min(1e-6)
    cx = (ink * x).sum((1, 2)) / mass
    cy = (ink * y).sum((1, 2)) / mass
    dx, dy = x - cx.view(-1, 1, 1), y - cy.view(-1, 1, 1)
    return tuple((ink * a * b).sum((1, 2)) / mass for a, b in ((dx, dx), (dx, dy), (dy, dy)))


def ink_slant(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) uint8 -> (N,) the ink's shear atan(mu11 / mu02) in degrees, positive leaning right;
    0 for a blank image."""
    _, mu11, mu02 = ink_moments(images)
    return torch.rad2deg(torch.atan(mu11 / mu02.clamp_min(1e-6)))


def neighbours(images: torch.Tensor, offsets: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
    """(..., H, W) -> for each (dy, dx) of `offsets` (each -1, 0 or 1; dy down), the image as each pixel
    sees its neighbour there, 0 beyond the edge."""
    h, w = images.shape[-2:]
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    return [padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offsets]


def skeleton(ink: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool digits -> the same digits thinned to lines one pixel wide, by Zhang and Suen's
    two-pass thinning (1984): each pass removes the ink pixels on one side of the strokes that have 2 to
    6 inked neighbours and one run of them, until nothing changes, so a stroke of any width leaves the
    same centre line."""
    lines = ink.clone()
    while True:
        removed_any = False
        for first_pass in (True, False):
            # the 8 neighbours clockwise from the one above (row index grows downward): p2 .. p9
            p2, p3, p4, p5, p6, p7, p8, p9 = neighbours(
                lines, ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
            )
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            inked = sum(p.int() for p in ring[:8])
            runs = sum((~a & b).int() for a, b in itertools.pairwise(ring))
            # the first pass takes the ink on the strokes' east and south sides, the second on their west and north
            side = ~(p2 & p4 & p6) & ~(p4 & p6 & p8) if first_pass else ~(p2 & p4 & p8) & ~(p2 & p6 & p8)
            remove = lines & (inked >= 2) & (inked <= 6) & (runs == 1) & side
            if remove.any():
                lines = lines & ~remove
                removed_any = True
        if not removed_any:
            return lines


def skeleton_slant(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) uint8 -> (N,) slant in degrees, positive leaning right: the shear of the digit's
    skeleton (the digit binarised at half intensity, then thinned), so that a pen's width is left out;
    0 for a blank image. Zhang and Suen's passes take each stroke's east and south sides first, which
    can turn a centre line a degree one way, so the digit and its mirror image are both thinned and
    their shears averaged (the mirror's with its sign turned back): an upright shape reads upright."""
    shears = [
        ink_slant(skeleton(digits[:, 0] > 127)[:, None].to(torch.uint8) * 255) for digits in (images, images.flip(-1))
    ]
    return (shears[0] - shears[1]) / 2


def deslanted_width(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) uint8 -> (N,) width in pixels of the digit with its slant sheared out; 0 for a blank image."""
    mu20, mu11, mu02 = ink_moments(images)
    variance = mu20 - mu11**2 / mu02.clamp_min(1e-6)
    return torch.sqrt(12 * variance.clamp_min(0))


def stroke_thickness(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) uint8 -> (N,) mean stroke width in pixels, 2 * area / boundary; 0 for a blank image."""
    ink = images[:, 0] > 127
    padded = torch.nn.functional.pad(ink, (1, 1, 1, 1))
    boundary = (padded[:, 1:, :] != padded[:, :-1, :]).sum((1, 2)) + (padded[:, :, 1:] != padded[:, :, :-1]).sum((1, 2))
    return 2 * ink.sum((1, 2)).float() / boundary.clamp_min(1).float()


PROPERTIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "slant": skeleton_slant,
    "width": deslanted_width,
    "thickness": stroke_thickness,
}


def prior_range(model: InfoGAN) -> tuple[float, float]:
    """Where the continuous codes were trained: U(-1, 1), or +-2 standard deviations of N(0, 1)."""
    return (-1.0, 1.0) if model.codes.continuous_prior == "uniform" else (-2.0, 2.0)


def per_column_spearman(measured: np.ndarray) -> np.ndarray:
    """(steps, n) measurements along an increasing sweep -> (n,) Spearman rho of each column; NaN if constant."""
    ranks = rankdata(measured, axis=0)
    steps = np.arange(1, measured.shape[0] + 1, dtype=float)
    ranks = ranks - ranks.mean(0)
    steps = steps - steps.mean()
    norm = np.sqrt((ranks**2).sum(0) * (steps**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ranks * steps[:, None]).sum(0) / norm


def correlation_key(code: int, prop: str) -> str:
    """The metric name of continuous code `code`'s correlation with property `prop`."""
    return f"factor/continuous_{code}/{prop}_spearman"


def change_key(code: int, prop: str) -> str:
    """The metric name of how far continuous code `code` moves property `prop` over its prior's range."""
    return f"factor/continuous_{code}/{prop}_change"


def sweep_measurements(model: InfoGAN, code: int, n_samples: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """Continuous code `code` swept over its prior's range (SWEEP_STEPS steps, the other codes at 0)
    on a fixed batch of `n_samples` latents: {property: (steps, n_samples) measurements}."""
    values = np.linspace(*prior_range(model), SWEEP_STEPS).tolist()
    frames = continuous_traversal(model, code, values, n_samples, seed)
    images = torch.stack([frame.images for frame in frames]).flatten(0, 1)  # (steps * n, C, H, W)
    return {name: measure(images).view(len(values), -1).numpy() for name, measure in PROPERTIES.items()}


def sweep_effect(measured: np.ndarray) -> tuple[float, float]:
    """One property's (steps, n) measurements along an increasing sweep -> (its mean per-latent
    Spearman rho, NaN where no latent's is defined; the median over latents of its last step minus its
    first)."""
    rho = per_column_spearman(measured)
    mean = float(np.nanmean(rho)) if np.isfinite(rho).any() else math.nan
    return mean, float(np.median(measured[-1] - measured[0]))


def factor_effects(model: InfoGAN, n_samples: int = 100, seed: int = 0) -> dict[str, float]:
    """For every continuous code and property: {correlation_key: mean per-latent rho, change_key: the
    median over latents of the property at the top of the prior's range minus at the bottom}."""
    metrics = {}
    for code in range(model.codes.n_continuous):
        for name, measured in sweep_measurements(model, code, n_samples, seed).items():
            metrics[correlation_key(code, name)], metrics[change_key(code, name)] = sweep_effect(measured)
    return metrics


def factor_names(
    effects: dict[str, float], n_continuous: int, min_abs_rho: float, max_other_rho: float
) -> dict[int, str]:
    """{code: property} for the continuous codes that clearly control one property, and only it.

    Code j is a candidate for property P when P is the property j moves most steadily (|rho|),
    |rho(j, P)| >= min_abs_rho, and no other code moves P farther (|change|; between codes whose
    changes are equal or not given, the steadier). A candidate is named P when, besides, it moves
    every property another candidate was found for at most max_other_rho: a code that turns slant
    and width together names neither. Codes without such evidence are left out (neutral names).
    Missing or NaN values count as 0.
    """

    def size(key: str) -> float:
        value = effects.get(key, math.nan)
        return abs(value) if math.isfinite(value) else 0.0

    def strength(code: int, prop: str) -> float:
        return size(correlation_key(code, prop))

    candidates = {}
    for code in range(n_continuous):
        prop = max(PROPERTIES, key=lambda name: strength(code, name))
        farthest = max(range(n_continuous), key=lambda other: (size(change_key(other, prop)), strength(other, prop)))
        rho = strength(code, prop)
        if rho >= min_abs_rho and rho > 0 and farthest == code:
            candidates[code] = prop
    return {
        code: prop
        for code, prop in candidates.items()
        if all(strength(code, other) <= max_other_rho for c, other in candidates.items() if c != code)
    }
