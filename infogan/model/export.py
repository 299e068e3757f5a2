"""The generator as a model of its own: a table of code values in, images out.

`CodeTable` wraps a trained generator so that it needs nothing of this repository to run: its input
is one row per image whose columns are the code values as the paper names them, then the noise,

    c1 .. cK      the class index of each categorical code (0 .. size-1, as a number)
    cK+1 ..       the continuous codes
    z1 .. zN      the incompressible noise

and its output the images as uint8 (B, C, H, W) in [0, 255], exactly what render draws for the same
values. `torch.export` traces it (the MLflow PyTorch flavour's "pt2" format), so a loaded copy is
a graph of torch operations, not a class to import.
"""

from __future__ import annotations

import torch
from torch import nn

from infogan.data.images import to_uint8
from infogan.model.codes import LatentCodes
from infogan.model.infogan import InfoGAN
from infogan.model.networks import Generator


def code_columns(codes: LatentCodes) -> list[str]:
    """The input table's column names, in order."""
    n_categorical = len(codes.categorical_sizes)
    return [
        *(codes.categorical_name(i) for i in range(n_categorical)),
        *(codes.continuous_name(j) for j in range(codes.n_continuous)),
        *(f"z{i + 1}" for i in range(codes.noise_dim)),
    ]


def code_table(codes: LatentCodes, noise: torch.Tensor, categorical: torch.Tensor, continuous: torch.Tensor):
    """The input table (B, columns) float32 for explicit values: what `LatentCodes.assemble` takes."""
    return torch.cat([categorical.float(), continuous.float(), noise.float()], dim=1).cpu()


class CodeTable(nn.Module):
    """A trained generator behind the code table (see the module's docstring), in eval mode."""

    def __init__(self, generator: Generator, codes: LatentCodes):
        super().__init__()
        self.generator = generator
        self.codes = codes

    @classmethod
    def of(cls, model: InfoGAN) -> CodeTable:
        """A CPU copy of `model`'s generator, in eval mode, behind the code table. A copy, so that
        neither a compiled generator (`train.compile`) nor a GPU one is what gets traced."""
        generator = Generator(model.config)
        generator.load_state_dict({k: v.detach().cpu() for k, v in model.generator.state_dict().items()})
        return cls(generator, model.codes).eval()

    def forward(self, table: torch.Tensor) -> torch.Tensor:
        k, m = len(self.codes.categorical_sizes), self.codes.n_continuous
        latent = self.codes.assemble(table[:, k + m :], table[:, :k].long(), table[:, k : k + m])
        return to_uint8(self.generator(latent.vector))
