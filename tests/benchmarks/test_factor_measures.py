"""benchmarks/factor_measures.py on real MNIST digits: each factor measure follows its own known
transformation and ignores the ones that leave its property alone."""

from __future__ import annotations

import functools

import pytest

from benchmarks.factor_measures import (
    SWEEPS,
    WITH_INK_SLANT,
    change_overlap,
    cross_pen,
    leaning_thickening_overlap,
    rotate,
    rotation_dependence,
    shear,
    stretch,
    stretch_in_frame,
    thicken,
    transformation_correlations,
)
from infogan.data.mnist import load_mnist_split
from infogan.evaluation.factors import ink_slant


@pytest.fixture(scope="module")
def digits(mnist_fixture_dir):
    return load_mnist_split(mnist_fixture_dir, "test")[0][:100]


@pytest.mark.parametrize(
    ("transform", "values", "follows", "ignores", "below"),
    [
        (shear, [-0.4, -0.2, 0.0, 0.2, 0.4], "slant", "width", 0.1),  # the shear that deslanting removes
        # across each digit's own axis as its ink's shear gives it, which that shear ignores; the
        # skeleton's shear (render's slant) leans a thick digit further than its ink's, so it sways a little
        (stretch_in_frame, [0.75, 0.9, 1.0, 1.1, 1.25], "width", "ink slant", 0.1),
        (stretch_in_frame, [0.75, 0.9, 1.0, 1.1, 1.25], "width", "slant", 0.3),
        (thicken, [-1.0, 0.0, 1.0], "thickness", "slant", 0.15),
    ],
)
def test_a_measure_follows_its_transformation_and_ignores_the_other(digits, transform, values, follows, ignores, below):
    found = transformation_correlations(digits, transform, values, WITH_INK_SLANT)
    assert found[follows][0] > 0.97, found
    assert abs(found[ignores][0]) < below, found
    assert found[follows][1] > 0  # it grows with the transformation's value


def test_every_sweep_measures_every_property(digits):
    for label, (transform, values) in SWEEPS.items():
        found = transformation_correlations(digits[:10], transform, values)
        assert set(found) == {"slant", "width", "thickness"}, label
        assert all(-1 <= rho <= 1 for rho, _ in found.values()), label


def test_a_plain_stretch_leans_a_leaning_digit_further(digits):
    """Widening along the image's x axis scales a digit's shear, mu11 / mu02: a digit leaning right leans
    further right, one leaning left further left. Over a set of digits the two signs cancel only as
    far as the digits lean both ways equally (MNIST's lean right about two times in three)."""
    leans = ink_slant(digits)
    values = [0.75, 0.9, 1.0, 1.1, 1.25]
    right = transformation_correlations(digits[leans > 2], stretch, values, WITH_INK_SLANT)["ink slant"]
    left = transformation_correlations(digits[leans < -2], stretch, values, WITH_INK_SLANT)["ink slant"]
    assert right[0] > 0.8 and right[1] > 0, right
    assert left[0] < -0.8 and left[1] < 0, left


def test_a_stretch_across_the_digits_own_axis_changes_the_image_apart_from_a_shear(digits):
    """The orthogonal-effects term's reading: a plain stretch of leaning digits shares part of a shear's
    change, one across each digit's own axis hardly any."""
    plain, in_frame = change_overlap(digits, shear, stretch), change_overlap(digits, shear, stretch_in_frame)
    assert in_frame < 0.03 < plain, (plain, in_frame)
    assert change_overlap(digits, shear, shear) == pytest.approx(1.0, abs=1e-4)


def test_a_thicker_pen_straightens_a_leaning_digit_in_its_ink_not_its_skeleton(digits):
    """A dilated leaning digit's ink reads nearer upright, an eroded one's leans further, each its own
    way; so beside a slant code whose 0 leans most latents right, a thickness code would read some
    slant in the ink's shear. Its skeleton's shear, render's slant, hardly moves."""
    leans = ink_slant(digits)
    right, left = (
        transformation_correlations(digits[mask], thicken, [-1.0, 0.0, 1.0], WITH_INK_SLANT)
        for mask in (leans > 2, leans < -2)
    )
    assert right["ink slant"][0] < -0.2 and right["ink slant"][1] < 0, right
    assert left["ink slant"][0] > 0.2 and left["ink slant"][1] > 0, left
    everyone = transformation_correlations(digits, thicken, [-1.0, 0.0, 1.0])
    assert abs(everyone["slant"][0]) < 0.15, everyone


def test_a_thickening_that_leans_shares_a_shears_change_the_same_way_on_every_digit(digits):
    """What improved.continuous_shared_effect reads: a lean beside a thickening moves the mean cosine with
    a shear in proportion (left against right: negative), where the cos^2 the orthogonal term pays grows
    with its square and stays small."""
    found = {lean: leaning_thickening_overlap(digits, lean) for lean in (0.0, 1.2, 2.4)}
    assert abs(found[0.0][0]) < 0.03
    assert found[2.4][0] < found[1.2][0] < found[0.0][0]
    assert found[2.4][0] < -0.05 and found[2.4][1] < 0.02


def test_within_the_classes_slant_and_width_score_least_as_themselves_and_over_the_batch_least_mixed(mnist_fixture_dir):
    """Why improved.real_continuous_class_dependence: the spreads of slant and width differ by class, so
    within the classes a mix of the two reads dependent, while over a whole batch the 45-degree mix
    reads less dependent than slant and width themselves."""
    images, labels = load_mnist_split(mnist_fixture_dir, "test")
    found = {
        angle: (pooled, within)
        for angle, pooled, within in rotation_dependence(images[:5000], labels[:5000], "width", (0, 45), batches=60)
    }
    assert found[0][1] < 0.75 * found[45][1]
    assert found[45][0] < found[0][0]


def test_both_slants_follow_a_shear_and_a_rotation_of_real_digits(digits):
    sheared = transformation_correlations(digits, shear, [-0.4, -0.2, 0.0, 0.2, 0.4], WITH_INK_SLANT)
    turned = transformation_correlations(digits, rotate, [-20.0, -10.0, 0.0, 10.0, 20.0], WITH_INK_SLANT)
    for name in ("slant", "ink slant"):
        assert sheared[name][0] > 0.9 and sheared[name][1] > 0, sheared
        assert turned[name][0] < -0.7 and turned[name][1] < 0, turned  # counter-clockwise: the top to the left


def test_a_round_pen_thickens_and_leaves_the_slant(digits):
    round_pen = functools.partial(thicken, pen=cross_pen)
    found = transformation_correlations(digits, round_pen, [-1.0, 0.0, 1.0])
    assert found["thickness"][0] > 0.97 and found["thickness"][1] > 0, found
    assert abs(found["slant"][0]) < 0.1, found
