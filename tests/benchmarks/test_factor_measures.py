"""benchmarks/factor_measures.py on real MNIST digits: each factor measure follows its own known
transformation and ignores the ones that leave its property alone."""

from __future__ import annotations

import pytest

from benchmarks.factor_measures import SWEEPS, shear, stretch, thicken, transformation_correlations
from infogan.data.mnist import load_mnist_split


@pytest.fixture(scope="module")
def digits(mnist_fixture_dir):
    return load_mnist_split(mnist_fixture_dir, "test")[0][:100]


@pytest.mark.parametrize(
    ("transform", "values", "follows", "ignores"),
    [
        (shear, [-0.4, -0.2, 0.0, 0.2, 0.4], "slant", "width"),  # the shear that deslanting removes
        (stretch, [0.75, 0.9, 1.0, 1.1, 1.25], "width", "slant"),
        (thicken, [-1.0, 0.0, 1.0], "thickness", "slant"),
    ],
)
def test_a_measure_follows_its_transformation_and_ignores_the_other(digits, transform, values, follows, ignores):
    found = transformation_correlations(digits, transform, values)
    assert found[follows][0] > 0.97, found
    assert abs(found[ignores][0]) < 0.1, found
    assert found[follows][1] > 0  # it grows with the transformation's value


def test_every_sweep_measures_every_property(digits):
    for label, (transform, values) in SWEEPS.items():
        found = transformation_correlations(digits[:10], transform, values)
        assert set(found) == {"slant", "width", "thickness"}, label
        assert all(-1 <= rho <= 1 for rho, _ in found.values()), label
