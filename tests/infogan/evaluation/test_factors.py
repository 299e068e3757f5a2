"""Tests for infogan.evaluation.factors: slant, width and thickness on drawn shapes, the per-latent
Spearman sweep, and the naming rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infogan.evaluation.factors import (
    PROPERTIES,
    deslanted_width,
    factor_effects,
    factor_names,
    ink_slant,
    per_column_spearman,
    skeleton,
    skeleton_slant,
    stroke_thickness,
)
from infogan.model.infogan import InfoGAN
from pipeline.params import shipped_model

SIZE = 28


def stroke(angle_from_vertical: float, width: float, length: float = 18.0) -> torch.Tensor:
    """A (1, 1, 28, 28) uint8 image of one straight stroke through the centre, leaning right for angle > 0."""
    rows, cols = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float64), torch.arange(SIZE, dtype=torch.float64), indexing="ij"
    )
    x, y = cols - (SIZE - 1) / 2, (SIZE - 1) / 2 - rows  # y up
    t = math.radians(angle_from_vertical)
    direction = (math.sin(t), math.cos(t))
    along = x * direction[0] + y * direction[1]
    across = (x * direction[1] - y * direction[0]).abs()
    ink = (across <= width / 2) & (along.abs() <= length / 2)
    return (ink.to(torch.uint8) * 255).view(1, 1, SIZE, SIZE)


@pytest.mark.parametrize("angle", [-30.0, -15.0, 0.0, 15.0, 30.0])
def test_the_ink_slant_recovers_the_angle_of_a_stroke(angle):
    measured = float(ink_slant(stroke(angle, width=3)))
    assert measured == pytest.approx(angle, abs=3.0)


@pytest.mark.parametrize("measure", [ink_slant, PROPERTIES["slant"]])
def test_a_slant_is_positive_leaning_right_and_monotonic(measure):
    angles = [-25, -10, 0, 10, 25]
    measured = measure(torch.cat([stroke(a, 3) for a in angles])).tolist()
    assert measured == sorted(measured) and measured[0] < 0 < measured[-1]


@pytest.mark.parametrize("angle", [-30.0, -15.0, 0.0, 15.0, 30.0])
@pytest.mark.parametrize("width", [2, 3, 4, 6])
def test_the_skeleton_is_a_line_one_pixel_wide_at_the_strokes_angle(angle, width):
    image = stroke(angle, width)
    lines = skeleton(image[:, 0] > 127)
    assert int(lines.sum()) >= 10  # a line remains, not a dot
    assert int(lines[0].sum(dim=1).max()) <= 2  # no row crosses more than a diagonal step of it
    assert bool((skeleton(lines) == lines).all())  # nothing left to thin
    assert float(skeleton_slant(image)) == pytest.approx(angle, abs=2.0)


@pytest.mark.parametrize("width", [6, 8, 10, 12])
def test_an_upright_ring_reads_upright_whatever_its_width(width):
    """One Zhang-Suen thinning takes the strokes' east and south sides first, which leans an upright
    ring's centre line a little, by an amount that changes with the ring's width; read with its mirror
    image's, the ring reads upright at every width."""
    ring = parallelogram(width, 0.0)
    ring[:, :, 8:20, 14 - width // 2 + 2 : 14 + width // 2 - 2] = 0
    assert float(skeleton_slant(ring)) == pytest.approx(0.0, abs=1e-4)


def test_a_wider_pen_moves_the_ink_slant_and_not_the_skeletons():
    """A thick stroke's ink spreads across the stroke as well as along it, which the shear
    mu11 / mu02 reads as less lean; its centre line leans as the stroke does."""
    thin, thick = stroke(30.0, 2), stroke(30.0, 6)
    assert float(ink_slant(thin) - ink_slant(thick)) > 2.5
    assert abs(float(skeleton_slant(thin) - skeleton_slant(thick))) < 1.0


@pytest.mark.parametrize("width", [2, 3, 4, 6])
def test_thickness_is_the_stroke_width(width):
    assert float(stroke_thickness(stroke(0.0, width, length=20))) == pytest.approx(width, rel=0.25)


def test_thickness_grows_with_width_whatever_the_slant():
    for angle in (0.0, 20.0):
        widths = stroke_thickness(torch.cat([stroke(angle, w) for w in (2, 3, 4, 5)])).tolist()
        assert widths == sorted(widths)


def parallelogram(width: float, shear: float, height: float = 16.0) -> torch.Tensor:
    """A (1, 1, 28, 28) uint8 filled parallelogram: `width` px wide on every row, its rows shifted
    right by `shear` px per px up (an upright box for shear 0)."""
    rows, cols = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float64), torch.arange(SIZE, dtype=torch.float64), indexing="ij"
    )
    x, y = cols - (SIZE - 1) / 2, (SIZE - 1) / 2 - rows  # y up
    ink = ((x - shear * y).abs() <= width / 2) & (y.abs() <= height / 2)
    return (ink.to(torch.uint8) * 255).view(1, 1, SIZE, SIZE)


@pytest.mark.parametrize("width", [2, 4, 8, 12])  # even: the pixel centres sit at half-integers
def test_width_of_an_upright_box_is_its_width(width):
    assert float(deslanted_width(parallelogram(width, 0.0))) == pytest.approx(width, rel=0.15)


@pytest.mark.parametrize("shear", [-0.4, -0.2, 0.2, 0.4])
def test_width_ignores_the_slant(shear):
    """The same box leaned over keeps its width, though its slant and its horizontal extent change."""
    upright, leaning = parallelogram(8, 0.0), parallelogram(8, shear)
    assert float(deslanted_width(leaning)) == pytest.approx(float(deslanted_width(upright)), rel=0.1)
    assert abs(float(ink_slant(leaning))) > 10  # it does lean


def test_width_grows_with_width_whatever_the_slant():
    for shear in (0.0, 0.3):
        widths = deslanted_width(torch.cat([parallelogram(w, shear) for w in (4, 6, 8, 10)])).tolist()
        assert widths == sorted(widths) and widths[-1] > 2 * widths[0]


def test_blank_images_measure_zero_not_nan():
    blank = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.uint8)
    assert ink_slant(blank).tolist() == [0.0, 0.0]
    assert skeleton_slant(blank).tolist() == [0.0, 0.0]
    assert deslanted_width(blank).tolist() == [0.0, 0.0]
    assert stroke_thickness(blank).tolist() == [0.0, 0.0]


def test_per_column_spearman():
    steps = np.arange(6, dtype=float)
    measured = np.stack([steps, -(steps**3), np.array([0, 2, 1, 3, 5, 4.0]), np.ones(6)], axis=1)
    rho = per_column_spearman(measured)
    assert rho[0] == pytest.approx(1.0) and rho[1] == pytest.approx(-1.0)
    assert 0 < rho[2] < 1
    assert math.isnan(rho[3])  # a property the sweep does not move has no rank correlation


class SlantByCode(InfoGAN):
    """A stand-in generator whose first continuous code sets a stroke's slant and second its thickness, exactly."""

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        codes = latent[:, -2:]
        images = [stroke(float(a) * 20, 4 + 3 * float(b)) for a, b in codes]
        return torch.cat(images).float() / 127.5 - 1


class ShearAndWidthByCode(InfoGAN):
    """A stand-in generator whose first continuous code shears a box and second sets its width, exactly."""

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        codes = latent[:, -2:]
        images = [parallelogram(8 + 3 * float(b), 0.4 * float(a)) for a, b in codes]
        return torch.cat(images).float() / 127.5 - 1


def test_factor_effects_find_which_code_owns_which_property():
    module = SlantByCode(shipped_model())
    metrics = factor_effects(module, n_samples=4)
    assert metrics["factor/continuous_0/slant_spearman"] > 0.95
    assert metrics["factor/continuous_1/thickness_spearman"] >= 0.9  # pixel widths tie between close values
    # the code that does not own a property leaves it (all but) unmoved: no or little correlation
    for key in ("factor/continuous_0/thickness_spearman", "factor/continuous_1/slant_spearman"):
        assert math.isnan(metrics[key]) or abs(metrics[key]) < 0.3, (key, metrics[key])


def test_factor_effects_tell_slant_from_width():
    metrics = factor_effects(ShearAndWidthByCode(shipped_model()), n_samples=4)
    assert metrics["factor/continuous_0/slant_spearman"] > 0.95
    assert metrics["factor/continuous_1/width_spearman"] > 0.95
    for key in ("factor/continuous_0/width_spearman", "factor/continuous_1/slant_spearman"):
        assert math.isnan(metrics[key]) or abs(metrics[key]) < 0.3, (key, metrics[key])
    assert factor_names(metrics, 2, 0.8, 0.3) == {0: "slant", 1: "width"}
    # how far: the box widens from 5 to 11 pixels over c1's range, and its shear of -0.4 to 0.4 leans it
    # atan(0.4) either way; each code leaves the other's property (all but) where it was
    assert metrics["factor/continuous_1/width_change"] == pytest.approx(6.0, abs=0.5)
    assert metrics["factor/continuous_0/slant_change"] == pytest.approx(2 * math.degrees(math.atan(0.4)), abs=3.0)
    assert abs(metrics["factor/continuous_0/width_change"]) < 0.5
    assert abs(metrics["factor/continuous_1/slant_change"]) < 1


def rhos(**values: float) -> dict[str, float]:
    """rhos(c0_slant=0.9) -> {'factor/continuous_0/slant_spearman': 0.9}."""
    out = {}
    for key, value in values.items():
        code, prop = key.split("_")
        out[f"factor/continuous_{code[1:]}/{prop}_spearman"] = value
    return out


@pytest.mark.parametrize(
    "correlations, expected",
    [
        # each code clearly owns one property, whatever the sign
        (rhos(c0_slant=-0.95, c0_thickness=0.1, c1_slant=0.05, c1_thickness=0.92), {0: "slant", 1: "thickness"}),
        (rhos(c0_slant=0.9, c0_width=0.2, c1_slant=-0.25, c1_width=-0.85), {0: "slant", 1: "width"}),
        # below the bar: neutral
        (rhos(c0_slant=0.7, c0_thickness=0.1, c1_slant=0.1, c1_thickness=0.95), {1: "thickness"}),
        # both codes move slant most: only the stronger one is named, the other moves thickness less
        (rhos(c0_slant=0.9, c0_thickness=0.85, c1_slant=0.95, c1_thickness=0.2), {1: "slant"}),
        # c0 leads on slant but turns the width that c1 owns as well: named for neither
        (rhos(c0_slant=0.92, c0_width=0.35, c1_slant=0.1, c1_width=0.9), {1: "width"}),
        # ... and when each turns the other's property too, neither is named
        (rhos(c0_slant=0.92, c0_width=0.5, c1_slant=0.45, c1_width=0.9), {}),
        # a property no other code is named for does not count against a code
        (rhos(c0_slant=0.95, c0_thickness=0.6, c1_slant=0.1, c1_thickness=0.7), {0: "slant"}),
        # missing (NaN) correlations count as no evidence
        (rhos(c0_slant=math.nan, c1_thickness=0.99), {1: "thickness"}),
        ({}, {}),
    ],
)
def test_factor_names_only_when_the_evidence_is_clear(correlations, expected):
    assert factor_names(correlations, 2, 0.8, 0.3) == expected


def changes(**values: float) -> dict[str, float]:
    """changes(c0_slant=30) -> {'factor/continuous_0/slant_change': 30}."""
    return {key.replace("_spearman", "_change"): value for key, value in rhos(**values).items()}


@pytest.mark.parametrize(
    "effects, expected",
    [
        # c1 moves slant more steadily but 4 degrees where c0 moves it 30: c1 is not the slant code
        (rhos(c0_slant=0.85, c1_slant=0.9) | changes(c0_slant=30.0, c1_slant=-4.0), {0: "slant"}),
        # ... nor when c0 is too unsteady to be named itself
        (rhos(c0_slant=0.73, c1_slant=0.87) | changes(c0_slant=29.6, c1_slant=-4.0), {}),
        # the change's sign does not count, and equal changes fall back on the steadier code
        (rhos(c0_slant=0.85, c1_slant=0.9) | changes(c0_slant=-5.0, c1_slant=30.0), {1: "slant"}),
        (rhos(c0_slant=0.85, c1_slant=0.9) | changes(c0_slant=5.0, c1_slant=5.0), {1: "slant"}),
    ],
)
def test_the_code_named_for_a_property_is_the_one_that_moves_it_farthest(effects, expected):
    assert factor_names(effects, 2, 0.8, 0.3) == expected


def test_factor_names_never_names_a_code_that_moves_nothing():
    assert factor_names(rhos(c0_slant=0.0, c0_thickness=0.0, c1_slant=0.3), 2, 0.0, 1.0) == {1: "slant"}
