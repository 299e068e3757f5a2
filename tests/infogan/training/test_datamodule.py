"""Tests for infogan.training.datamodule: Lightning trains on the split held on the device."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from infogan.data.neighbours import pixel_neighbours
from infogan.training.datamodule import DeviceImages
from infogan.training.module import InfoGANTraining
from pipeline.params import shipped_improved, shipped_model, shipped_train
from tests.infogan.data.test_batches import order


def images(n: int, channels: int = 1, size: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


class Recorder(pl.Callback):
    """Keeps a copy of every batch Lightning hands the module: a tensor, or (images, partners)."""

    def __init__(self):
        self.batches: list = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(tuple(t.clone() for t in batch) if isinstance(batch, (tuple, list)) else batch.clone())


def quiet_trainer(max_epochs: int, recorder: Recorder) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )


def test_lightning_trains_on_device_images_with_a_new_order_each_epoch():
    data = images(48, size=28)
    recorder = Recorder()
    trainer = quiet_trainer(2, recorder)
    datamodule = DeviceImages(data, batch_size=8, batches_per_epoch=3, seed=5)
    trainer.fit(InfoGANTraining(shipped_model(), shipped_train(recipe="paper")), datamodule=datamodule)
    assert len(recorder.batches) == 6
    for epoch in (0, 1):  # Lightning's set_epoch reached the shuffle: each epoch is that epoch's order
        expected = data[order(48, 8, 3, seed=5, epoch=epoch)]
        assert torch.equal(torch.stack(recorder.batches[3 * epoch : 3 * epoch + 3]), expected)
    assert datamodule.on_device is None  # the device copy is dropped after fit


def test_lightning_trains_on_pairs_when_the_recipe_asks_for_neighbours():
    data = images(48, size=28)
    recorder = Recorder()
    trainer = quiet_trainer(1, recorder)
    datamodule = DeviceImages(data, batch_size=8, batches_per_epoch=2, seed=5, neighbours=3)
    module = InfoGANTraining(shipped_model(), shipped_train(recipe="improved"), shipped_improved(neighbours=3))
    trainer.fit(module, datamodule=datamodule)
    assert len(recorder.batches) == 2
    table = pixel_neighbours(data, 3, progress=False)
    for batch, partners in recorder.batches:
        assert batch.shape == partners.shape == (8, 1, 28, 28)
        for image, partner in zip(batch, partners, strict=True):
            own = int((data == image).flatten(1).all(1).nonzero()[0])
            assert any(torch.equal(partner, data[j]) for j in table[own])
    assert datamodule.on_device is None and datamodule.neighbour_table is None
