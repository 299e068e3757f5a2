"""The training loop's bookkeeping, apart from the objective in infogan/training/module.py: the iteration
count, losses summed on the device and read back only when logged, and the watch for a NaN or
infinite loss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from infogan.errors import InfoGANError

if TYPE_CHECKING:
    import pytorch_lightning as pl


def iterations_done(trainer: pl.Trainer) -> int:
    """Training iterations completed so far, the running one included. Not `global_step`, which
    counts optimizer steps: two per iteration here, and a skipped step does not count."""
    return trainer.fit_loop.epoch_loop.total_batch_idx + 1


def iterations_planned(trainer: pl.Trainer) -> int:
    """The training iterations the whole run makes: its epochs times the batches of each."""
    return trainer.max_epochs * trainer.num_training_batches


@dataclass
class Losses:
    """One iteration's named scalar losses, stacked into one tensor on their device."""

    keys: list[str]
    values: torch.Tensor

    @classmethod
    def stack(cls, losses: dict[str, torch.Tensor]) -> Losses:
        return cls(list(losses), torch.stack([value.detach().float() for value in losses.values()]))


class RunningMeans:
    """Sums of named scalar tensors, kept on their device; `take` is the one read back to the host."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.sums: torch.Tensor | None = None
        self.count = 0

    def add(self, losses: Losses) -> None:
        if self.sums is None:
            self.keys, self.sums = list(losses.keys), losses.values.clone()
        else:
            self.sums.add_(losses.values)
        self.count += 1

    def take(self) -> dict[str, float]:
        """The means since the last take, as Python floats; then start again from empty."""
        means = dict(zip(self.keys, (self.sums / self.count).tolist(), strict=True))
        self.keys, self.sums, self.count = [], None, 0
        return means

    def state_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "sums": None if self.sums is None else self.sums.cpu(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.keys, self.count = list(state["keys"]), int(state["count"])
        self.sums = None if state["sums"] is None else state["sums"].to(device)


class NonFiniteLoss(InfoGANError):
    """A loss became NaN or infinite (with `on_nonfinite: stop`). The message names the losses, the
    iteration and the parameters that are no longer finite; `kept` is what the caller, which knows
    where checkpoints go, says about the last one (`with_kept`)."""

    def __init__(self, losses: list[str], iteration: int, parameters: list[str], kept: str = "") -> None:
        self.losses, self.iteration, self.parameters, self.kept = losses, iteration, parameters, kept
        if parameters:
            shown = ", ".join(parameters[:4]) + (f" and {len(parameters) - 4} more" if len(parameters) > 4 else "")
            weights = f"non-finite parameters now: {shown}"
        else:
            weights = "every parameter is still finite"
        super().__init__(
            f"{', '.join(losses)} became NaN or infinite at iteration {iteration}; {weights}. The run stopped"
            f"{f'; {kept}' if kept else ''}. Lower the learning rates, or set train.on_nonfinite: skip to "
            "skip such steps"
        )

    def with_kept(self, kept: str) -> NonFiniteLoss:
        """The same error, saying `kept` about the last checkpoint."""
        return NonFiniteLoss(self.losses, self.iteration, self.parameters, kept)


class NonFiniteWatch:
    """Remembers, on the device, the first iteration at which any loss was NaN or infinite and
    which losses were; `check` reads that back (one scalar) and raises `NonFiniteLoss` naming them.
    The module checks at every read back it already does, and before any checkpoint is written."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.first: torch.Tensor | None = None  # iteration of the first non-finite loss, or -1
        self.bad: torch.Tensor | None = None  # which of `keys` were non-finite then

    def watch(self, losses: Losses, iteration: int) -> None:
        bad = ~torch.isfinite(losses.values)
        if self.first is None:
            self.keys = list(losses.keys)
            self.first = torch.full((), -1, dtype=torch.long, device=bad.device)
            self.bad = torch.zeros_like(bad)
        new = (self.first < 0) & bad.any()
        self.first = torch.where(new, torch.full_like(self.first, iteration), self.first)
        self.bad = torch.where(new, bad, self.bad)

    def combine(self, reduce: Callable[..., torch.Tensor]) -> None:
        """Take in what every process saw, with `reduce(tensor, reduce_op=...)` an in-place
        all-reduce (a Lightning strategy's `reduce`): the earliest non-finite iteration of any, and
        the losses non-finite on any. Every process must call it at the same point."""
        if self.first is None:  # nothing watched yet, on any rank: they all step alike
            return
        never = torch.iinfo(torch.long).max
        first = reduce(torch.where(self.first < 0, never, self.first), reduce_op="min")
        self.first = torch.where(first == never, -1, first)
        self.bad = reduce(self.bad.to(torch.long), reduce_op="max").bool()

    def check(self, parameters: Callable[[], list[str]]) -> None:
        """Raise `NonFiniteLoss` if a loss was non-finite; `parameters()` names the parameters that
        are not finite (called only then: it reads every weight back)."""
        if self.first is None or int(self.first) < 0:
            return
        names = [key for key, bad in zip(self.keys, self.bad.tolist(), strict=True) if bad]
        raise NonFiniteLoss(names, int(self.first), parameters())
