"""The training split as Lightning's data module: moved once to the training device, sharded by rank."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from infogan.data.batches import DeviceBatches, ShardedShuffle
from infogan.data.neighbours import pixel_neighbours


class DeviceImages(pl.LightningDataModule):
    """The training split for `Trainer.fit`: moved once to the device Lightning trains on, sharded by rank."""

    def __init__(
        self,
        images: torch.Tensor,
        batch_size: int,
        batches_per_epoch: int,
        seed: int,
        neighbours: int = 0,
        stored: torch.Tensor | None = None,
    ):
        """`neighbours`: with k > 0, batches are pairs of images and one of each image's k nearest
        training images in pixel space (DeviceBatches): `stored`, the (N, k) table prepare found, or
        else found once on the device in `setup`."""
        super().__init__()
        self.images, self.batch_size, self.batches_per_epoch, self.seed = images, batch_size, batches_per_epoch, seed
        self.neighbours, self.stored = neighbours, stored
        self.on_device: torch.Tensor | None = None
        self.neighbour_table: torch.Tensor | None = None

    def setup(self, stage: str) -> None:
        device = self.trainer.strategy.root_device
        self.on_device = self.images.to(device)
        if self.neighbours > 0 and self.stored is not None:
            self.neighbour_table = self.stored.to(device)
        elif self.neighbours > 0 and self.neighbour_table is None:
            rank_zero = self.trainer.is_global_zero
            self.neighbour_table = pixel_neighbours(self.on_device, self.neighbours, progress=rank_zero)

    def train_dataloader(self) -> DeviceBatches:
        sampler = ShardedShuffle(
            len(self.images),
            self.batch_size,
            self.batches_per_epoch,
            self.seed,
            rank=self.trainer.global_rank,
            world_size=self.trainer.world_size,
        )
        return DeviceBatches(self.on_device, sampler, self.neighbour_table)

    def teardown(self, stage: str) -> None:
        self.on_device = self.neighbour_table = None  # frees the device copies once fit is done
