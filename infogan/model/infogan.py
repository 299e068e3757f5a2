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

    def continuous_slices(self) -> list[tuple[nn.Parameter, int, slice]]:
        """(parameter, dim, index) for every weight that takes in or reads out the continuous codes: the
        columns of G's first layer they enter by, and the rows of Q's head that read their means."""
        n, latent_dim = self.codes.n_continuous, self.config.latent_dim
        first = self.generator.fc[0]  # a linear layer without bias: the latent's first use
        return [(first.weight, 1, slice(latent_dim - n, latent_dim)), *self.q_head.continuous_slices()]

    def turn_continuous(self, turn: torch.Tensor) -> None:
        """In place: re-express every weight `continuous_slices` names for the continuous codes turned
        by `turn` (n, n), the new codes being turn @ the old (`turn_slice`): G draws from the new codes
        what it drew from the old, and Q reads the new ones."""
        with torch.no_grad():
            for tensor, dim, index in self.continuous_slices():
                turn_slice(tensor, dim, index, turn)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Generate images (B, C, H, W) in [-1, 1] from latent vectors (B, latent_dim)."""
        return self.generator(latent)

    def encode(self, images: torch.Tensor) -> CodeParams:
        """Q's posterior over the code for images in [-1, 1]."""
        return self.q_head(self.trunk(images))


def turn_slice(tensor: torch.Tensor, dim: int, index: slice, turn: torch.Tensor) -> None:
    """In place: re-express the part of `tensor` that `continuous_slices` names for codes turned by
    `turn` (n, n), the new codes being turn @ old ones. Columns a code enters by (dim 1) become
    columns @ turn.T, so G draws from the new codes what it drew from the old; rows that read a code
    (dim 0) become turn @ rows, so Q reads the new codes. Pass turn.square() for Adam's second moments."""
    turn = turn.to(tensor.device, tensor.dtype)
    if dim == 1:
        tensor[:, index] = tensor[:, index] @ turn.T
    else:
        tensor[index] = turn @ tensor[index]
