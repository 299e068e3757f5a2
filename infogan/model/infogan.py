"""InfoGAN's networks as one plain `nn.Module`: the latent codes, the generator G, the discriminator
trunk that D and Q share, D's head and Q's head.

It is what a trained model is, apart from how it was trained: evaluation and export take it, and
the LightningModule (infogan/training/module.py) trains one. Its state dict's keys are
`generator.*`, `trunk.*`, `d_head.*` and `q_head.*`.
"""

from __future__ import annotations

import torch
from torch import nn

from infogan.config import ModelConfig
from infogan.model.codes import LatentCodes
from infogan.model.networks import AdversarialHead, CodeParams, DiscriminatorTrunk, Generator, QHead


class InfoGAN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.codes = LatentCodes(config)
        # built in this order, so that a seed gives the same initial weights as ever
        self.generator = Generator(config)
        self.trunk = DiscriminatorTrunk(config)
        self.d_head = AdversarialHead(config, self.trunk.out_features)
        self.q_head = QHead(config, self.trunk.out_features)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Generate images (B, C, H, W) in [-1, 1] from latent vectors (B, latent_dim)."""
        return self.generator(latent)

    def encode(self, images: torch.Tensor) -> CodeParams:
        """Q's posterior over the code for images in [-1, 1]."""
        return self.q_head(self.trunk(images))
