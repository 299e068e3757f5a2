"""Tests for infogan.model.losses: the information loss terms against torch's own, and the adversarial losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from infogan.model.losses import (
    MIN_LOG_SCALE,
    InfoLoss,
    categorical_nll,
    discriminator_loss,
    gaussian_nll,
    generator_loss,
    information_loss,
    least_dependent_turn,
    plane_turn,
)
from infogan.model.networks import CodeParams


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def reference_ce(logits: torch.Tensor, classes: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    chunks = logits.split(list(sizes), dim=1)
    return torch.stack([F.cross_entropy(chunk, classes[:, i]) for i, chunk in enumerate(chunks)])


def random_classes(batch: int, sizes: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.stack([torch.randint(k, (batch,), generator=generator) for k in sizes], dim=1)


@pytest.mark.parametrize("sizes", [(10,), (10,) * 10, (4, 4, 4), (10, 3), (2, 7, 5)])
def test_categorical_nll_equals_cross_entropy(sizes):
    g = seeded()
    logits = torch.randn(32, sum(sizes), generator=g) * 3
    classes = random_classes(32, sizes, g)
    nll = categorical_nll(logits, classes, sizes)
    assert nll.shape == (len(sizes),)
    torch.testing.assert_close(nll, reference_ce(logits, classes, sizes))


def test_categorical_nll_keeps_the_codes_apart():
    """Two equal-size codes: code 1 is predicted perfectly, code 0 uniformly."""
    logits = torch.cat([torch.zeros(2, 4), torch.tensor([[50.0, 0, 0, 0], [0, 0, 50.0, 0]])], dim=1)
    classes = torch.tensor([[1, 0], [3, 2]])
    nll = categorical_nll(logits, classes, (4, 4))
    torch.testing.assert_close(nll, torch.tensor([math.log(4), 0.0]))


@pytest.mark.parametrize("sizes", [(10,), (10, 3)])
def test_uniform_logits_give_ln_k(sizes):
    logits = torch.full((8, sum(sizes)), 0.7)
    classes = random_classes(8, sizes, seeded())
    torch.testing.assert_close(categorical_nll(logits, classes, sizes), torch.tensor([math.log(k) for k in sizes]))


@pytest.mark.parametrize("sizes", [(10,), (10, 3)])
def test_no_softmax_before_the_cross_entropy(sizes):
    """A confident correct Q scores ~0; on probabilities (a double softmax) it would score near ln K."""
    classes = random_classes(16, sizes, seeded())
    logits = torch.cat(
        [F.one_hot(classes[:, i], k).float() * 40 - 20 for i, k in enumerate(sizes)], dim=1
    )  # +20 on the right class, -20 elsewhere
    nll = categorical_nll(logits, classes, sizes)
    assert (nll < 1e-6).all()
    double_softmax = reference_ce(torch.cat([c.softmax(1) for c in logits.split(list(sizes), 1)], 1), classes, sizes)
    assert (double_softmax > 0.5).all()  # what a softmax-first implementation would give
    # and a confident wrong Q pays the full margin of 40 nats
    wrong = categorical_nll(-logits, classes, sizes)
    torch.testing.assert_close(wrong, reference_ce(-logits, classes, sizes))
    assert (wrong > 39).all()


def test_gaussian_nll_equals_normal_log_prob():
    g = seeded()
    mean = torch.randn(64, 3, generator=g)
    log_scale = torch.rand(64, 3, generator=g) * 4 - 2  # in [-2, 2], above the clamp
    value = torch.randn(64, 3, generator=g)
    expected = -torch.distributions.Normal(mean, log_scale.exp()).log_prob(value).mean(0)
    nll = gaussian_nll(mean, log_scale, value)
    assert nll.shape == (3,)
    torch.testing.assert_close(nll, expected)


def test_gaussian_nll_at_the_mean_with_unit_scale():
    nll = gaussian_nll(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2))
    torch.testing.assert_close(nll, torch.full((2,), 0.5 * math.log(2 * math.pi)))


def test_gaussian_nll_clamps_tiny_scales():
    """Below MIN_LOG_SCALE the scale is held at exp(MIN_LOG_SCALE): the loss stays finite."""
    mean, value = torch.zeros(2, 1), torch.full((2, 1), 0.1)
    at_floor = gaussian_nll(mean, torch.full((2, 1), MIN_LOG_SCALE), value)
    below = gaussian_nll(mean, torch.full((2, 1), -50.0), value)
    torch.testing.assert_close(below, at_floor)
    assert torch.isfinite(below).all()


def test_information_loss_sums_the_codes():
    g = seeded()
    sizes = (10, 3)
    q = CodeParams(torch.randn(8, 13, generator=g), torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g))
    classes = random_classes(8, sizes, g)
    continuous = torch.rand(8, 2, generator=g) * 2 - 1
    info = information_loss(q, classes, continuous, sizes)
    assert isinstance(info, InfoLoss)
    torch.testing.assert_close(info.categorical, reference_ce(q.categorical_logits, classes, sizes).sum())
    expected = -torch.distributions.Normal(q.continuous_mean, q.continuous_log_scale.exp()).log_prob(continuous)
    torch.testing.assert_close(info.continuous, expected.mean(0).sum())


def test_information_loss_is_zero_for_a_missing_code_type():
    q = CodeParams(torch.zeros(4, 0), torch.randn(4, 2), torch.zeros(4, 2))
    info = information_loss(q, torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, 2), ())
    assert info.categorical.item() == 0
    q = CodeParams(torch.zeros(4, 10), torch.zeros(4, 0), torch.zeros(4, 0))
    info = information_loss(q, torch.zeros(4, 1, dtype=torch.long), torch.zeros(4, 0), (10,))
    assert info.continuous.item() == 0
    assert info.categorical.item() == pytest.approx(math.log(10))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.5])


def test_bce_discriminator_loss():
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    expected = sum(softplus(-r) for r in REAL.tolist()) / 3 + sum(softplus(f) for f in FAKE.tolist()) / 3
    assert discriminator_loss(REAL, FAKE, "bce").item() == pytest.approx(expected, rel=1e-6)


def test_bce_discriminator_loss_at_zero_logits_is_2_ln_2():
    assert discriminator_loss(torch.zeros(5), torch.zeros(5), "bce").item() == pytest.approx(2 * math.log(2))


def test_bce_generator_loss_is_non_saturating():
    # -log sigmoid(f), the non-saturating form: large when D rejects the fakes
    expected = sum(softplus(-f) for f in FAKE.tolist()) / 3
    assert generator_loss(FAKE, "bce").item() == pytest.approx(expected, rel=1e-6)
    assert generator_loss(torch.full((2,), -10.0), "bce").item() == pytest.approx(10.0, abs=1e-3)


def test_hinge_discriminator_loss():
    # relu(1 - r): 0, 2, 0.5 -> mean 5/6;  relu(1 + f): 0, 1, 2.5 -> mean 7/6
    assert discriminator_loss(REAL, FAKE, "hinge").item() == pytest.approx(5 / 6 + 7 / 6)


def test_hinge_generator_loss():
    # -mean(f) = -(-3 + 0 + 1.5) / 3
    assert generator_loss(FAKE, "hinge").item() == pytest.approx(0.5)


def test_losses_backpropagate_to_the_logits():
    fake = FAKE.clone().requires_grad_()
    generator_loss(fake, "hinge").backward()
    torch.testing.assert_close(fake.grad, torch.full((3,), -1 / 3))


def test_the_least_dependent_turn_undoes_a_turn_of_factors_whose_spreads_differ_by_class():
    """Two factors, independent within each of two classes, spread 1 and 0.25 in one and the other way
    round in the other, read turned by 30 degrees: the turn found is -30 degrees, and undoes it."""
    generator = torch.Generator().manual_seed(0)
    factors = torch.rand(4000, 2, generator=generator) * 2 - 1
    classes = (torch.arange(4000) >= 2000).long()
    factors[classes == 0, 1] *= 0.25
    factors[classes == 1, 0] *= 0.25
    readings = factors @ plane_turn(2, 0, 1, 30.0).T
    turn, angles = least_dependent_turn(readings, classes, 2)
    assert angles == [pytest.approx(-30.0, abs=1.0)]
    assert turn @ plane_turn(2, 0, 1, 30.0) == pytest.approx(torch.eye(2), abs=0.02)
    unturned, _ = least_dependent_turn(factors, classes, 2)
    assert unturned == pytest.approx(torch.eye(2), abs=0.02)  # already independent: no turn


def test_a_plane_turn_turns_one_pair_of_codes_and_leaves_the_others():
    turn = plane_turn(3, 0, 2, 90.0)
    assert turn @ torch.tensor([1.0, 5.0, 0.0]) == pytest.approx(torch.tensor([0.0, 5.0, 1.0]), abs=1e-6)
    assert turn @ turn.T == pytest.approx(torch.eye(3), abs=1e-6)
