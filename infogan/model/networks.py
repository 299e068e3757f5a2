"""The generator, the discriminator trunk shared by D and Q, and the two heads on top of it.

Sizes come from `ModelConfig` (the params section `model.<dataset>`); params.yaml's `model.mnist`
gives the paper's MNIST networks (appendix C.1):
    G: FC1024-BN-ReLU, FC 7*7*128-BN-ReLU, up-conv 64 4x4/2 BN-ReLU, up-conv 1 4x4/2, tanh
    D: conv 64 4x4/2 lReLU(0.1), conv 128 4x4/2 BN lReLU, FC1024 BN lReLU, then
       D head: FC 1;  Q head: FC128-BN-lReLU, FC to the code parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from infogan.config import ModelConfig

LEAK = 0.1


class Generator(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.base_shape = (config.g_base_channels, config.g_base_size, config.g_base_size)
        layers: list[nn.Module] = []
        width = config.latent_dim
        for out in (*config.g_fc, config.g_base_channels * config.g_base_size**2):
            layers += [nn.Linear(width, out, bias=False), nn.BatchNorm1d(out), nn.ReLU(inplace=True)]
            width = out
        self.fc = nn.Sequential(*layers)
        layers = []
        channels = config.g_base_channels
        for out in config.g_upconv:
            layers += [
                nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        layers += [nn.ConvTranspose2d(channels, config.image_channels, 4, stride=2, padding=1), nn.Tanh()]
        self.upconv = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> images (B, C, H, W) in [-1, 1]."""
        return self.upconv(self.fc(latent).view(-1, *self.base_shape))


class DiscriminatorTrunk(nn.Module):
    """The layers D and Q share. With spectral norm, SN replaces batch norm (as in SN-GAN)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        sn = _spectral_norm if config.spectral_norm else (lambda m: m)
        norm = config.spectral_norm is False
        layers: list[nn.Module] = []
        channels = config.image_channels
        for i, out in enumerate(config.d_conv):
            layers.append(sn(nn.Conv2d(channels, out, 4, stride=2, padding=1, bias=i == 0 or not norm)))
            if i > 0 and norm:  # the paper has no BN on D's first layer
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(LEAK, inplace=True))
            channels = out
        layers.append(nn.Flatten())
        width = channels * (config.image_size // 2 ** len(config.d_conv)) ** 2
        for out in config.d_fc:
            layers.append(sn(nn.Linear(width, out, bias=not norm)))
            if norm:
                layers.append(nn.BatchNorm1d(out))
            layers.append(nn.LeakyReLU(LEAK, inplace=True))
            width = out
        self.layers = nn.Sequential(*layers)
        self.out_features = width
        init_weights(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> features (B, out_features)."""
        return self.layers(images)


class AdversarialHead(nn.Module):
    def __init__(self, config: ModelConfig, in_features: int):
        super().__init__()
        linear = nn.Linear(in_features, 1)
        self.linear = _spectral_norm(linear) if config.spectral_norm else linear
        init_weights(self)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F) -> real/fake logits (B,)."""
        return self.linear(features).squeeze(1)


@dataclass
class CodeParams:
    """Q's posterior over the code for a batch of images."""

    categorical_logits: torch.Tensor  # (B, sum(categorical)) raw logits, no softmax
    continuous_mean: torch.Tensor  # (B, n_continuous)
    continuous_log_scale: torch.Tensor  # (B, n_continuous), log of the Gaussian's std


class QHead(nn.Module):
    def __init__(self, config: ModelConfig, in_features: int):
        super().__init__()
        self.n_categorical_logits = sum(config.categorical)
        self.n_continuous = config.continuous
        self.learned_std = config.q_continuous_std == "learned"
        self.hidden = nn.Sequential(
            nn.Linear(in_features, config.q_hidden, bias=False),
            nn.BatchNorm1d(config.q_hidden),
            nn.LeakyReLU(LEAK, inplace=True),
        )
        n_std = config.continuous if self.learned_std else 0
        self.out = nn.Linear(config.q_hidden, self.n_categorical_logits + config.continuous + n_std)
        init_weights(self)

    def continuous_slices(self) -> list[tuple[nn.Parameter, int, slice]]:
        """Where the continuous codes' mean readings are made: (parameter, dim, index) for the output
        layer's rows (weight and bias) that give them."""
        rows = slice(self.n_categorical_logits, self.n_categorical_logits + self.n_continuous)
        return [(self.out.weight, 0, rows), (self.out.bias, 0, rows)]

    def forward(self, features: torch.Tensor) -> CodeParams:
        out = self.out(self.hidden(features))
        if not self.learned_std:  # std 1: log-scale 0
            logits, mean = out.split([self.n_categorical_logits, self.n_continuous], dim=1)
            return CodeParams(logits, mean, torch.zeros_like(mean))
        logits, mean, log_scale = out.split([self.n_categorical_logits, self.n_continuous, self.n_continuous], dim=1)
        return CodeParams(logits, mean, log_scale)


class PairHead(nn.Module):
    """InfoGAN-CR's contrastive discriminator: D's trunk over two images stacked on the channels, then
    logits over the `n_codes` codes, for which one the two images were generated sharing. It trains
    with D's optimizer and is not part of the model a training leaves (infogan/model/infogan.py)."""

    def __init__(self, config: ModelConfig, n_codes: int):
        super().__init__()
        self.trunk = DiscriminatorTrunk(config.model_copy(update={"image_channels": 2 * config.image_channels}))
        linear = nn.Linear(self.trunk.out_features, n_codes)
        self.linear = _spectral_norm(linear) if config.spectral_norm else linear
        init_weights(self.linear)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Two batches of images (B, C, H, W) -> logits (B, n_codes)."""
        return self.linear(self.trunk(torch.cat([first, second], dim=1)))


def _spectral_norm(layer: nn.Module) -> nn.Module:
    """Initialise, then wrap: the power iteration starts from the weight it will normalise."""
    init_weights(layer)
    return spectral_norm(layer)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, BN scales N(1, 0.02), zero biases.

    Layers already wrapped in spectral norm were initialised before wrapping and are left alone.
    """
    for m in module.modules():
        if hasattr(m, "parametrizations"):
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
