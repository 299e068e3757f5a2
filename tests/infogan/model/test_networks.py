"""Tests for infogan.model.networks: output shapes and ranges, and the paper's MNIST architecture layer by layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from infogan.config import ModelConfig
from infogan.model.infogan import InfoGAN
from infogan.model.losses import plane_turn
from infogan.model.networks import LEAK, AdversarialHead, CodeParams, DiscriminatorTrunk, Generator, QHead
from pipeline.params import shipped_model

MNIST = shipped_model()
CELEBA = shipped_model(
    noise_dim=128,
    categorical=(10,) * 10,
    continuous=0,
    g_fc=(),
    g_base_channels=448,
    g_base_size=2,
    g_upconv=(256, 128, 64),
    d_conv=(64, 128, 256),
    d_fc=(),
    image_channels=3,
    image_size=32,
)
MNIST_SN = shipped_model(spectral_norm=True)
MIXED = shipped_model(categorical=(10, 3), continuous=3, continuous_prior="gaussian")

CONFIGS = pytest.mark.parametrize(
    "config", [MNIST, CELEBA, MNIST_SN, MIXED], ids=["mnist", "celeba32", "mnist-spectral-norm", "mnist-mixed-codes"]
)
BATCH = 4


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def trunk_width(config: ModelConfig) -> int:
    if config.d_fc:
        return config.d_fc[-1]
    return config.d_conv[-1] * (config.image_size // 2 ** len(config.d_conv)) ** 2


@CONFIGS
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_generator_output_shape_and_range(config, training):
    generator = Generator(config).train(training)
    # large inputs drive the tanh into saturation: the output must still stay in range
    latent = torch.randn(BATCH, config.latent_dim) * 50
    images = generator(latent)
    assert images.shape == (BATCH, config.image_channels, config.image_size, config.image_size)
    assert images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert torch.isfinite(images).all()


@CONFIGS
def test_generator_output_depends_on_the_latent(config):
    generator = Generator(config).train()
    images = generator(torch.randn(BATCH, config.latent_dim))
    assert not torch.allclose(images[0], images[1])


@CONFIGS
def test_trunk_and_heads_output_shapes(config):
    trunk = DiscriminatorTrunk(config)
    assert trunk.out_features == trunk_width(config)
    images = torch.rand(BATCH, config.image_channels, config.image_size, config.image_size) * 2 - 1
    features = trunk(images)
    assert features.shape == (BATCH, trunk.out_features)

    logits = AdversarialHead(config, trunk.out_features)(features)
    assert logits.shape == (BATCH,)

    q = QHead(config, trunk.out_features)(features)
    assert isinstance(q, CodeParams)
    assert q.categorical_logits.shape == (BATCH, sum(config.categorical))
    assert q.continuous_mean.shape == (BATCH, config.continuous)
    assert q.continuous_log_scale.shape == (BATCH, config.continuous)


@CONFIGS
def test_q_head_splits_its_output_layer_in_order(config):
    """logits, then means, then log-scales, read off the one output layer."""
    trunk = DiscriminatorTrunk(config)
    head = QHead(config, trunk.out_features).eval()
    features = torch.randn(BATCH, trunk.out_features)
    raw = head.out(head.hidden(features))
    q = head(features)
    n_logits, n_cont = sum(config.categorical), config.continuous
    assert raw.shape[1] == n_logits + 2 * n_cont
    torch.testing.assert_close(q.categorical_logits, raw[:, :n_logits])
    torch.testing.assert_close(q.continuous_mean, raw[:, n_logits : n_logits + n_cont])
    torch.testing.assert_close(q.continuous_log_scale, raw[:, n_logits + n_cont :])


def layer_summary(module: nn.Module) -> list[tuple]:
    """(type, key sizes) of every leaf layer, in order."""
    summary = []
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            summary.append(("Linear", layer.in_features, layer.out_features, layer.bias is not None))
        elif isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            summary.append(
                (
                    type(layer).__name__,
                    layer.in_channels,
                    layer.out_channels,
                    layer.kernel_size,
                    layer.stride,
                    layer.padding,
                    layer.bias is not None,
                )
            )
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            summary.append((type(layer).__name__, layer.num_features))
        elif isinstance(layer, nn.LeakyReLU):
            summary.append(("LeakyReLU", layer.negative_slope))
        elif isinstance(layer, (nn.ReLU, nn.Tanh, nn.Flatten)):
            summary.append((type(layer).__name__,))
    return summary


def test_mnist_generator_is_the_papers():
    """FC1024-BN-ReLU, FC 7x7x128-BN-ReLU, up-conv 64 4x4/2 BN-ReLU, up-conv 1 4x4/2, tanh."""
    assert layer_summary(Generator(MNIST)) == [
        ("Linear", 62 + 10 + 2, 1024, False),
        ("BatchNorm1d", 1024),
        ("ReLU",),
        ("Linear", 1024, 7 * 7 * 128, False),
        ("BatchNorm1d", 7 * 7 * 128),
        ("ReLU",),
        ("ConvTranspose2d", 128, 64, (4, 4), (2, 2), (1, 1), False),
        ("BatchNorm2d", 64),
        ("ReLU",),
        ("ConvTranspose2d", 64, 1, (4, 4), (2, 2), (1, 1), True),
        ("Tanh",),
    ]


def test_mnist_discriminator_and_q_are_the_papers():
    """D: conv 64 4x4/2 lReLU (no BN), conv 128 4x4/2 BN lReLU, FC1024 BN lReLU, FC 1; Q: FC128-BN-lReLU, FC out."""
    trunk = DiscriminatorTrunk(MNIST)
    assert LEAK == 0.1
    assert layer_summary(trunk) == [
        ("Conv2d", 1, 64, (4, 4), (2, 2), (1, 1), True),
        ("LeakyReLU", 0.1),
        ("Conv2d", 64, 128, (4, 4), (2, 2), (1, 1), False),
        ("BatchNorm2d", 128),
        ("LeakyReLU", 0.1),
        ("Flatten",),
        ("Linear", 7 * 7 * 128, 1024, False),
        ("BatchNorm1d", 1024),
        ("LeakyReLU", 0.1),
    ]
    assert layer_summary(AdversarialHead(MNIST, trunk.out_features)) == [("Linear", 1024, 1, True)]
    assert layer_summary(QHead(MNIST, trunk.out_features)) == [
        ("Linear", 1024, 128, False),
        ("BatchNorm1d", 128),
        ("LeakyReLU", 0.1),
        ("Linear", 128, 10 + 2 * 2, True),
    ]


def test_spectral_norm_replaces_batch_norm_in_the_discriminator():
    trunk = DiscriminatorTrunk(MNIST_SN)
    weighted = [m for m in trunk.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == 3
    assert all(parametrize.is_parametrized(m, "weight") for m in weighted)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in trunk.modules())
    assert all(m.bias is not None for m in weighted)  # no BN after them, so they keep their biases
    head = AdversarialHead(MNIST_SN, trunk.out_features)
    assert parametrize.is_parametrized(head.linear, "weight")
    # without the option nothing is parametrized
    assert not any(parametrize.is_parametrized(m) for m in DiscriminatorTrunk(MNIST).modules())


def top_singular_value(matrix: torch.Tensor, iterations: int = 300) -> float:
    """Largest singular value by plain power iteration (LAPACK is needlessly slow for this here)."""
    v = torch.ones(matrix.shape[1])
    for _ in range(iterations):
        v = matrix.T @ (matrix @ v)
        v = v / v.norm()
    return float((matrix @ v).norm())


@pytest.mark.parametrize("index", [0, 2], ids=["conv64", "conv128"])
def test_spectral_norm_bounds_the_layers_spectral_norm(index):
    conv = DiscriminatorTrunk(MNIST_SN).train().layers[index]
    assert isinstance(conv, nn.Conv2d)
    for _ in range(30):  # each access in training mode runs one power iteration
        _ = conv.weight
    raw = conv.parametrizations.weight.original.detach().flatten(1)
    assert abs(top_singular_value(raw) - 1) > 0.1  # the raw weight's own norm is not 1 ...
    assert top_singular_value(conv.weight.detach().flatten(1)) == pytest.approx(1.0, abs=0.02)  # ... SN makes it 1


def test_dcgan_initialisation():
    generator = Generator(MNIST)
    first = generator.fc[0].weight.detach()
    assert first.mean().abs() < 0.002
    assert first.std() == pytest.approx(0.02, rel=0.05)
    bn = generator.fc[1]
    bn_weight = bn.weight.detach()
    assert bn_weight.mean() == pytest.approx(1.0, abs=0.01) and bn_weight.std() == pytest.approx(0.02, rel=0.2)
    assert (bn.bias == 0).all()
    assert (generator.upconv[-2].bias == 0).all()
    # spectral-norm layers are initialised through their original weight
    trunk = DiscriminatorTrunk(MNIST_SN)
    original = trunk.layers[-2].parametrizations.weight.original.detach()
    assert original.std() == pytest.approx(0.02, rel=0.05)


def test_turning_the_continuous_slices_keeps_the_images_and_turns_q_s_readings():
    """After the weights `continuous_slices` names are turned by T (`turn_continuous`), G draws from
    T c what it drew from c, and Q reads T times what it read; nothing else moves."""
    torch.manual_seed(0)
    model = InfoGAN(
        shipped_model(g_fc=(16,), g_base_channels=8, g_upconv=(4,), d_conv=(4, 8), d_fc=(8,), q_hidden=8)
    ).eval()
    latent = model.codes.sample(8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model.q_head.out.bias.normal_()  # initialised at 0, which any turn keeps
        images = model(latent.vector)
        before = model.encode(images)
        other = {k: v.clone() for k, v in model.state_dict().items()}
        turn = plane_turn(2, 0, 1, 25.0)
        model.turn_continuous(turn)
        turned = model.codes.assemble(latent.vector[:, :62], latent.categorical, latent.continuous @ turn.T)
        assert model(turned.vector) == pytest.approx(images, abs=1e-5)
        after = model.encode(images)
    assert after.continuous_mean == pytest.approx(before.continuous_mean @ turn.T, abs=1e-5)
    assert torch.equal(after.categorical_logits, before.categorical_logits)
    assert torch.equal(after.continuous_log_scale, before.continuous_log_scale)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, other[k])}
    assert changed == {"generator.fc.0.weight", "q_head.out.weight", "q_head.out.bias"}
