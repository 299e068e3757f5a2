"""Training batches drawn on the device: which images each rank trains on in each epoch, and the
batches indexed out of a tensor that stays on the device."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from infogan.errors import InfoGANError


def epoch_seed(seed: int, epoch: int) -> int:
    """A generator seed for one epoch's order, distinct for each (seed, epoch) pair in practice."""
    return (seed * 0x9E3779B97F4A7C15 + epoch) % 2**63


class ShardedShuffle:
    """Which images each rank trains on in each epoch: a seeded shuffle split into disjoint shards.

    Every rank computes the same order, from a CPU generator seeded by (seed, epoch), so it is the
    same on any hardware and after a restart, and takes every `world_size`-th index from position
    `rank`. An epoch is `batches_per_epoch` batches per rank; when that asks for more images than
    there are, whole shuffled passes are chained. Lightning calls `set_epoch` at each epoch start,
    as it does for a DistributedSampler.
    """

    def __init__(
        self, n_items: int, batch_size: int, batches_per_epoch: int, seed: int, rank: int = 0, world_size: int = 1
    ):
        if n_items <= 0 or batch_size <= 0 or batches_per_epoch <= 0:
            raise InfoGANError(
                f"need images, a positive batch size and batches per epoch; got {n_items}, "
                f"{batch_size}, {batches_per_epoch}"
            )
        if not 0 <= rank < world_size:
            raise InfoGANError(f"rank {rank} is not in 0..{world_size - 1}")
        self.n_items, self.batch_size, self.batches_per_epoch = n_items, batch_size, batches_per_epoch
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def batches(self) -> torch.Tensor:
        """This rank's indices for the current epoch, int64 (batches_per_epoch, batch_size), on the CPU."""
        needed = self.batch_size * self.batches_per_epoch * self.world_size
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        passes = -(-needed // self.n_items)
        order = torch.cat([torch.randperm(self.n_items, generator=generator) for _ in range(passes)])
        return order[:needed][self.rank :: self.world_size].view(self.batches_per_epoch, self.batch_size)

    def partner_columns(self, k: int) -> torch.Tensor:
        """For each of `batches()`' indices, which of its k neighbours is its partner this epoch:
        int64 in [0, k), the same shape, drawn from a generator of its own (so the order of the
        images is the same with or without partners) seeded by (seed, epoch)."""
        needed = self.batch_size * self.batches_per_epoch * self.world_size
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch) ^ PARTNER_STREAM)
        columns = torch.randint(0, k, (needed,), generator=generator)
        return columns[self.rank :: self.world_size].view(self.batches_per_epoch, self.batch_size)


PARTNER_STREAM = 0x6E6E  # sets the partner draws' generator apart from the order's


class DeviceBatches:
    """Batches of uint8 images indexed out of a tensor that stays on the training device.

    Given a neighbour table (N, k) (infogan/data/neighbours.py), each batch is a pair: the images and,
    for each, one of its k neighbours, the column drawn per epoch by the sampler.

    One host-to-device copy of the epoch's indices per epoch, then each batch is one `index_select`
    on the device: no worker processes, no per-batch host work, no per-batch copy. It is a plain
    iterable with a length, which Lightning's `fit` takes in place of a DataLoader; its `sampler`
    receives Lightning's `set_epoch` calls.

    It is resumable: `state_dict` (which Lightning saves in a checkpoint) is the epoch and how many
    of its batches were handed out, and after `load_state_dict` the next pass over that epoch
    starts after them. Lightning does not prefetch from an iterable with a length, so batches
    handed out are batches trained on.
    """

    def __init__(self, images: torch.Tensor, sampler: ShardedShuffle, neighbours: torch.Tensor | None = None):
        self.images, self.sampler, self.neighbours = images, sampler, neighbours
        self.taken = 0
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches already trained on)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        start = 0
        if self._resume_at is not None and self._resume_at[0] == self.sampler.epoch:
            start = self._resume_at[1]
        self._resume_at = None
        device = self.images.device
        order = self.sampler.batches()[start:].to(device, non_blocking=True)
        self.taken = start
        if self.neighbours is None:
            for index in order:
                self.taken += 1
                yield self.images.index_select(0, index)
            return
        columns = self.sampler.partner_columns(self.neighbours.shape[1])[start:].to(device, non_blocking=True)
        for index, column in zip(order, columns, strict=True):
            self.taken += 1
            partners = self.neighbours[index, column]
            yield self.images.index_select(0, index), self.images.index_select(0, partners)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "taken": self.taken}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = (int(state["epoch"]), int(state["taken"]))
