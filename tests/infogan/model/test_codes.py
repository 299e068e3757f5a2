"""Tests for infogan.model.codes: the latent vector's layout, the priors, reproducibility and entropies."""

from __future__ import annotations

import math

import pytest
import torch

from infogan.model.codes import Latent, LatentCodes
from pipeline.params import shipped_model

MIXED = shipped_model(noise_dim=5, categorical=(10, 3), continuous=2)
LAYOUTS = pytest.mark.parametrize(
    "config",
    [
        shipped_model(),
        MIXED,
        shipped_model(noise_dim=0, categorical=(4, 4, 4), continuous=0),
        shipped_model(noise_dim=3, categorical=(), continuous=3, continuous_prior="gaussian"),
    ],
    ids=["mnist", "cat10-cat3-cont2", "three-equal-codes-no-noise", "continuous-only"],
)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blocks(codes: LatentCodes, vector: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """Cut a latent vector into noise, one block per categorical code and the continuous part, by the layout."""
    noise = vector[:, : codes.noise_dim]
    start = codes.noise_dim
    onehots = []
    for k in codes.categorical_sizes:
        onehots.append(vector[:, start : start + k])
        start += k
    continuous = vector[:, start:]
    assert continuous.shape[1] == codes.n_continuous
    return noise, onehots, continuous


@LAYOUTS
def test_sample_shapes(config):
    codes = LatentCodes(config)
    latent = codes.sample(16, seeded())
    assert isinstance(latent, Latent)
    assert latent.vector.shape == (16, config.latent_dim) == (16, codes.dim)
    assert latent.categorical.shape == (16, len(config.categorical))
    assert latent.categorical.dtype == torch.long
    assert latent.continuous.shape == (16, config.continuous)


@LAYOUTS
def test_vector_layout_matches_the_code_values(config):
    codes = LatentCodes(config)
    noise = torch.randn(32, config.noise_dim)
    categorical = codes.sample_categorical(32, seeded(1))
    continuous = codes.sample_continuous(32, seeded(2))
    latent = codes.assemble(noise, categorical, continuous)

    got_noise, onehots, got_continuous = blocks(codes, latent.vector)
    torch.testing.assert_close(got_noise, noise, rtol=0, atol=0)
    torch.testing.assert_close(got_continuous, continuous, rtol=0, atol=0)
    for i, (k, onehot) in enumerate(zip(config.categorical, onehots, strict=True)):
        expected = torch.nn.functional.one_hot(categorical[:, i], k).float()
        torch.testing.assert_close(onehot, expected, rtol=0, atol=0)
    assert latent.categorical is categorical and latent.continuous is continuous


def test_sampled_vector_is_one_hot_at_the_sampled_index_for_each_code():
    codes = LatentCodes(MIXED)
    latent = codes.sample(500, seeded())
    _, onehots, continuous = blocks(codes, latent.vector)
    for i, (k, onehot) in enumerate(zip(MIXED.categorical, onehots, strict=True)):
        assert onehot.shape[1] == k
        assert (onehot.sum(1) == 1).all()
        assert ((onehot == 0) | (onehot == 1)).all()
        assert torch.equal(onehot.argmax(1), latent.categorical[:, i])
        assert latent.categorical[:, i].min() >= 0 and latent.categorical[:, i].max() < k
    torch.testing.assert_close(continuous, latent.continuous, rtol=0, atol=0)


def test_hand_built_latent():
    codes = LatentCodes(shipped_model(noise_dim=2, categorical=(3, 2), continuous=1))
    latent = codes.assemble(torch.tensor([[0.5, -0.5]]), torch.tensor([[2, 0]]), torch.tensor([[0.25]]))
    assert latent.vector.tolist() == [[0.5, -0.5, 0, 0, 1, 1, 0, 0.25]]


def test_uniform_prior_moments():
    codes = LatentCodes(shipped_model(continuous=4, continuous_prior="uniform"))
    samples = codes.sample_continuous(50_000, seeded())
    assert samples.min() >= -1 and samples.max() <= 1
    assert samples.min() < -0.99 and samples.max() > 0.99  # it covers the whole interval
    assert samples.mean().abs() < 0.01
    assert samples.var().item() == pytest.approx(1 / 3, abs=0.01)


def test_gaussian_prior_moments():
    codes = LatentCodes(shipped_model(continuous=4, continuous_prior="gaussian"))
    samples = codes.sample_continuous(50_000, seeded())
    assert samples.mean().abs() < 0.02
    assert samples.var().item() == pytest.approx(1.0, abs=0.03)
    assert samples.abs().max() > 1  # unbounded, unlike the uniform prior


def test_noise_is_standard_normal():
    codes = LatentCodes(shipped_model(noise_dim=62, noise_prior="gaussian"))
    noise = codes.sample_noise(2_000, seeded())
    assert noise.shape == (2_000, 62)
    assert noise.mean().abs() < 0.01
    assert noise.var().item() == pytest.approx(1.0, abs=0.02)


def test_uniform_noise_prior():
    codes = LatentCodes(shipped_model(noise_dim=62, noise_prior="uniform"))
    noise = codes.sample_noise(2_000, seeded())
    assert noise.shape == (2_000, 62)
    assert noise.min() >= -1 and noise.max() <= 1
    assert noise.min() < -0.99 and noise.max() > 0.99
    assert noise.var().item() == pytest.approx(1 / 3, abs=0.01)
    # sample() draws its noise from the same prior
    vector = codes.sample(2_000, seeded()).vector[:, :62]
    assert vector.abs().max() <= 1 and vector.var().item() == pytest.approx(1 / 3, abs=0.01)


@pytest.mark.parametrize("prior, bound, variance", [("uniform", 0.2, 0.2**2 / 3), ("gaussian", None, 0.2**2)])
def test_noise_scale_shrinks_the_prior(prior, bound, variance):
    codes = LatentCodes(shipped_model(noise_dim=62, noise_prior=prior, noise_scale=0.2))
    noise = codes.sample(2_000, seeded()).vector[:, :62]
    assert noise.var().item() == pytest.approx(variance, rel=0.03)
    if bound is not None:
        assert noise.abs().max() <= bound and noise.abs().max() > 0.99 * bound


@pytest.mark.parametrize("k", [10, 3])
def test_categorical_classes_are_roughly_uniform(k):
    codes = LatentCodes(shipped_model(categorical=(10, 3)))
    n = 30_000
    column = 0 if k == 10 else 1
    counts = torch.bincount(codes.sample_categorical(n, seeded())[:, column], minlength=k).double()
    assert counts.numel() == k  # no class index out of range
    expected = n / k
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # chi-square with k - 1 dof: mean k - 1, this bound is far in the tail (p < 1e-4)
    assert chi2 < (k - 1) + 8 * math.sqrt(2 * (k - 1))


def test_same_seeded_generator_gives_same_samples():
    codes = LatentCodes(MIXED)
    a, b = codes.sample(64, seeded(3)), codes.sample(64, seeded(3))
    assert torch.equal(a.vector, b.vector)
    assert torch.equal(a.categorical, b.categorical)
    assert torch.equal(a.continuous, b.continuous)
    c = codes.sample(64, seeded(4))
    assert not torch.equal(a.vector, c.vector)


def test_code_names_count_categorical_codes_first():
    codes = LatentCodes(MIXED)  # two categorical codes, two continuous
    assert [codes.categorical_name(i) for i in range(2)] == ["c1", "c2"]
    assert [codes.continuous_name(j) for j in range(2)] == ["c3", "c4"]
    assert LatentCodes(shipped_model(categorical=(), continuous=2)).continuous_name(0) == "c1"


def test_entropies():
    codes = LatentCodes(shipped_model(categorical=(10, 3)))
    assert codes.categorical_entropy() == pytest.approx([math.log(10), math.log(3)])
    assert codes.continuous_entropy() == pytest.approx(math.log(2))
    gaussian = LatentCodes(shipped_model(continuous_prior="gaussian"))
    assert gaussian.continuous_entropy() == pytest.approx(0.5 * math.log(2 * math.pi * math.e))
