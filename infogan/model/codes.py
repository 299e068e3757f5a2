"""The latent vector: incompressible noise z plus the structured code c (categorical + continuous).

Layout of the generator input, (B, noise_dim + sum(categorical) + continuous):
    [ z (noise_dim) | one-hot of code 0 | one-hot of code 1 | ... | continuous codes ]
Sampling is a few fused tensor ops, with no Python loop over code groups.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from infogan.config import ModelConfig


@dataclass
class Latent:
    """One batch of latents: the generator input and the code values it was built from."""

    vector: torch.Tensor  # (B, latent_dim), the generator input
    categorical: torch.Tensor  # (B, n_categorical) long, class index of each categorical code
    continuous: torch.Tensor  # (B, n_continuous) float

    def first(self, n: int) -> Latent:
        """The first n rows of the batch (the terms computed on part of it)."""
        return Latent(self.vector[:n], self.categorical[:n], self.continuous[:n])


class LatentCodes:
    """Samples latents from the priors and assembles chosen code values into generator inputs."""

    def __init__(self, config: ModelConfig):
        self.noise_dim = config.noise_dim
        self.noise_prior = config.noise_prior
        self.noise_scale = config.noise_scale
        self.categorical_sizes = tuple(config.categorical)
        self.n_continuous = config.continuous
        self.continuous_prior = config.continuous_prior
        self.dim = config.latent_dim
        sizes = torch.tensor(self.categorical_sizes, dtype=torch.long)
        # start column of each one-hot block inside the latent vector
        offsets = config.noise_dim + torch.cumsum(sizes, 0) - sizes
        # (sizes, offsets) per device, so the training loop never copies them host-to-device
        self._tables = {torch.device("cpu"): (sizes, offsets)}

    def _on(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        device = torch.device(device if device is not None else "cpu")
        if device not in self._tables:
            sizes, offsets = self._tables[torch.device("cpu")]
            self._tables[device] = (sizes.to(device), offsets.to(device))
        return self._tables[device]

    def sample_noise(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        if self.noise_prior == "uniform":
            noise = torch.rand(n, self.noise_dim, generator=generator, device=device) * 2 - 1
        else:
            noise = torch.randn(n, self.noise_dim, generator=generator, device=device)
        return noise if self.noise_scale == 1.0 else noise * self.noise_scale

    def sample_categorical(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """(n, n_categorical) uniform class indices, every code sampled at once."""
        sizes, _ = self._on(device)
        u = torch.rand(n, len(self.categorical_sizes), generator=generator, device=device)
        return (u * sizes).long().clamp_max_(sizes - 1)

    def sample_continuous(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        if self.continuous_prior == "uniform":
            return torch.rand(n, self.n_continuous, generator=generator, device=device) * 2 - 1
        return torch.randn(n, self.n_continuous, generator=generator, device=device)

    def assemble(self, noise: torch.Tensor, categorical: torch.Tensor, continuous: torch.Tensor) -> Latent:
        """Build generator inputs from explicit noise (B, noise_dim), class indices and continuous values."""
        n = noise.shape[0]
        vector = torch.zeros(n, self.dim, device=noise.device, dtype=noise.dtype)
        vector[:, : self.noise_dim] = noise
        if self.categorical_sizes:
            columns = categorical + self._on(noise.device)[1]  # (B, n_categorical)
            vector.scatter_(1, columns, 1.0)
        if self.n_continuous:
            vector[:, self.dim - self.n_continuous :] = continuous
        return Latent(vector, categorical, continuous)

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> Latent:
        """A batch from the priors: z per `noise_prior`, each categorical code uniform, continuous per the prior."""
        return self.assemble(
            self.sample_noise(n, generator, device),
            self.sample_categorical(n, generator, device),
            self.sample_continuous(n, generator, device),
        )

    def hold_continuous(self, latent: Latent, started: int) -> Latent:
        """`latent` with every continuous code from index `started` on held at 0 (those not yet
        started, `improved.continuous_stagger`); `latent` itself when all have started."""
        if started >= self.n_continuous:
            return latent
        continuous = latent.continuous.clone()
        continuous[:, started:] = 0
        vector = latent.vector.clone()
        vector[:, self.dim - self.n_continuous + started :] = 0
        return Latent(vector, latent.categorical, continuous)

    def other_class(self, latent: Latent, generator: torch.Generator | None = None) -> Latent:
        """`latent` with every categorical code moved to another of its classes, drawn uniformly among
        the rest; z and the continuous codes kept (`improved.continuous_class_agreement`)."""
        sizes, _ = self._on(latent.vector.device)
        u = torch.rand(latent.categorical.shape, generator=generator, device=latent.vector.device)
        shift = 1 + (u * (sizes - 1)).long().clamp_max_(sizes - 2)  # 1 .. size - 1
        noise = latent.vector[:, : self.noise_dim]
        return self.assemble(noise, (latent.categorical + shift) % sizes, latent.continuous)

    def redraw_other_continuous(
        self, latent: Latent, started: int, generator: torch.Generator | None = None
    ) -> tuple[Latent, torch.Tensor]:
        """For each row of `latent`, a latent that keeps z, the categorical codes and one of the first
        `started` continuous codes (drawn uniformly), and draws the other started ones anew from the
        prior; the codes not started stay as they are (`improved.continuous_cross_reading`). Returns the
        new latent and the kept code's index (B,)."""
        n, device = latent.vector.shape[0], latent.vector.device
        kept = (torch.rand(n, generator=generator, device=device) * started).long().clamp_max_(started - 1)
        drawn = self.sample_continuous(n, generator, device)
        codes = torch.arange(self.n_continuous, device=device)
        redrawn = (codes[None] < started) & (codes[None] != kept[:, None])  # (B, n_continuous)
        continuous = torch.where(redrawn, drawn, latent.continuous)
        return self.assemble(latent.vector[:, : self.noise_dim], latent.categorical, continuous), kept

    @property
    def n_codes(self) -> int:
        """The categorical codes and the continuous ones, z not counted."""
        return len(self.categorical_sizes) + self.n_continuous

    def share_one_code(
        self, latent: Latent, generator: torch.Generator | None = None, continuous_only: bool = False
    ) -> tuple[Latent, torch.Tensor]:
        """InfoGAN-CR's pairs: for each row of `latent`, a new latent that keeps the value of one code,
        drawn uniformly among the candidates, and draws z and every other code anew. The candidates are
        every code (index j < number of categorical codes: categorical code j; else continuous code j
        minus that), or with `continuous_only` the continuous codes alone (index j: continuous code j).
        Returns the new latent and the kept code's index among the candidates (B,)."""
        n, device = latent.vector.shape[0], latent.vector.device
        noise = self.sample_noise(n, generator, device)  # drawn in `sample`'s order
        categorical = self.sample_categorical(n, generator, device)
        continuous = self.sample_continuous(n, generator, device)
        first = len(self.categorical_sizes) if continuous_only else 0  # the first candidate's code index
        n_candidates = self.n_codes - first
        kept = (torch.rand(n, generator=generator, device=device) * n_candidates).long().clamp_max_(n_candidates - 1)
        n_categorical = len(self.categorical_sizes)
        codes = torch.arange(self.n_codes, device=device)
        same = (kept[:, None] + first) == codes[None]  # (B, n_codes): the code this row keeps
        categorical = torch.where(same[:, :n_categorical], latent.categorical, categorical)
        continuous = torch.where(same[:, n_categorical:], latent.continuous, continuous)
        return self.assemble(noise, categorical, continuous), kept

    def categorical_name(self, code: int) -> str:
        """The paper's name of categorical code `code`: c1, c2, ..."""
        return f"c{code + 1}"

    def continuous_name(self, code: int) -> str:
        """The paper's name of continuous code `code`, numbered after the categorical codes."""
        return f"c{len(self.categorical_sizes) + code + 1}"

    def categorical_entropy(self) -> list[float]:
        """H(c) in nats of each categorical prior: ln K."""
        return [math.log(k) for k in self.categorical_sizes]

    def continuous_entropy(self) -> float:
        """Differential entropy in nats of one continuous code's prior."""
        if self.continuous_prior == "uniform":
            return math.log(2.0)  # U(-1, 1)
        return 0.5 * math.log(2 * math.pi * math.e)  # N(0, 1)


def fixed_codes(
    codes: LatentCodes, n: int, seed: int, first_code_order: Sequence[int] | None = None, device=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noise, class indices and continuous values (at 0) for n columns, reproducible from `seed`:
    the columns of a traversal. They spread over the first categorical code's classes, in
    `first_code_order` when given."""
    g = torch.Generator().manual_seed(seed)
    noise = codes.sample_noise(n, g)
    categorical = codes.sample_categorical(n, g)
    if codes.categorical_sizes:
        order = torch.tensor(first_code_order or range(codes.categorical_sizes[0]))
        categorical[:, 0] = order[torch.arange(n) % len(order)]
    continuous = torch.zeros(n, codes.n_continuous)
    device = device if device is not None else "cpu"
    return noise.to(device), categorical.to(device), continuous.to(device)
