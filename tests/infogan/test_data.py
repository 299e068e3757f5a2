"""Tests for infogan.data: pixel ranges, prepared splits on disk, the seeded sharded shuffle, device batches."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from infogan.data import DeviceBatches, DeviceImages, ShardedShuffle, load_split, save_split, to_model_range, to_uint8
from infogan.errors import InfoGANError
from infogan.module import InfoGAN
from infogan.neighbours import pixel_neighbours
from pipeline.params import shipped_improved, shipped_model, shipped_optim


def images(n: int, channels: int = 1, size: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


def test_to_model_range_endpoints():
    out = to_model_range(torch.tensor([0, 255], dtype=torch.uint8))
    assert out.dtype == torch.float32
    assert out.tolist() == [-1.0, 1.0]


def test_to_uint8_inverts_to_model_range_for_every_value():
    every = torch.arange(256, dtype=torch.uint8)
    back = to_uint8(to_model_range(every))
    assert back.dtype == torch.uint8
    assert torch.equal(back, every)


def test_to_uint8_clamps_out_of_range_values():
    assert to_uint8(torch.tensor([-3.0, -1.0, 0.0, 1.0, 7.0])).tolist() == [0, 0, 128, 255, 255]


@pytest.mark.parametrize("channels", [1, 3])
def test_split_round_trip(tmp_path, channels):
    x, y = images(10, channels), torch.arange(10)
    path = tmp_path / "nested" / "train.pt"
    save_split(x, y, path)
    assert [p.name for p in path.parent.iterdir()] == ["train.pt"]  # written atomically, nothing left over
    got_x, got_y = load_split(path)
    assert torch.equal(got_x, x) and got_x.dtype == torch.uint8
    assert torch.equal(got_y, y)


def test_split_of_a_non_contiguous_view_round_trips(tmp_path):
    x = images(6, 3).permute(0, 1, 3, 2)  # a non-contiguous view
    save_split(x, torch.zeros(6, dtype=torch.long), tmp_path / "s.pt")
    assert torch.equal(load_split(tmp_path / "s.pt")[0], x)


def test_load_split_of_a_missing_file_says_to_run_prepare(tmp_path):
    with pytest.raises(InfoGANError, match="run the prepare stage") as info:
        load_split(tmp_path / "absent.pt")
    assert "absent.pt" in str(info.value)


@pytest.mark.parametrize(
    "contents",
    [
        {"images": images(4).float(), "labels": torch.zeros(4)},  # float images
        {"images": images(4)[:, 0], "labels": torch.zeros(4)},  # (N, H, W)
        {"images": images(4), "labels": torch.zeros(3)},  # label count differs
        {"images": images(4)},  # no labels
        {"pictures": images(4), "labels": torch.zeros(4)},  # wrong key
        images(4),  # a bare tensor, not a mapping
        [images(4), torch.zeros(4)],  # a list
    ],
    ids=["float", "3d", "label-count", "no-labels", "wrong-key", "bare-tensor", "list"],
)
def test_load_split_with_wrong_contents_says_to_rerun_prepare(tmp_path, contents):
    path = tmp_path / "bad.pt"
    torch.save(contents, path)
    with pytest.raises(InfoGANError, match="rerun prepare") as info:
        load_split(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [b"", b"definitely not a torch file", b"PK\x03\x04truncated zip"],
    ids=["empty", "text", "truncated-zip"],
)
def test_load_split_of_an_unreadable_file_says_to_rerun_prepare(tmp_path, raw):
    path = tmp_path / "bad.pt"
    path.write_bytes(raw)
    with pytest.raises(InfoGANError, match="rerun prepare"):
        load_split(path)


def test_load_split_of_a_truncated_split_says_to_rerun_prepare(tmp_path):
    path = tmp_path / "train.pt"
    save_split(images(8), torch.zeros(8, dtype=torch.long), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InfoGANError, match="rerun prepare"):
        load_split(path)


# ---------------------------------------------------------------- the seeded, sharded shuffle


def order(n: int, batch: int, batches: int, seed: int = 0, epoch: int = 0, rank: int = 0, world: int = 1):
    sampler = ShardedShuffle(n, batch, batches, seed, rank=rank, world_size=world)
    sampler.set_epoch(epoch)
    return sampler.batches()


def test_shuffle_has_the_epoch_shape():
    batches = order(100, 8, 5)
    assert batches.shape == (5, 8) and batches.dtype == torch.int64
    assert len(ShardedShuffle(100, 8, 5, seed=0)) == 5


def test_an_epoch_of_one_pass_is_a_permutation():
    assert sorted(order(40, 10, 4).flatten().tolist()) == list(range(40))


def test_shuffle_is_reproducible_from_seed_and_epoch():
    assert torch.equal(order(64, 8, 4, seed=1, epoch=3), order(64, 8, 4, seed=1, epoch=3))
    assert not torch.equal(order(64, 8, 4, seed=1), order(64, 8, 4, seed=2))
    assert not torch.equal(order(64, 8, 4, epoch=0), order(64, 8, 4, epoch=1))
    assert not torch.equal(order(64, 8, 4).flatten(), torch.arange(32))  # shuffled


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_draw_disjoint_shards_of_one_shuffle(world):
    shards = [order(60, 4, 5, seed=7, epoch=2, rank=rank, world=world).flatten() for rank in range(world)]
    drawn = torch.cat(shards)
    assert len(set(drawn.tolist())) == len(drawn) == 20 * world  # no image on two ranks
    single = order(60, 4 * world, 5, seed=7, epoch=2).flatten()  # the same global order, dealt round-robin
    for rank, shard in enumerate(shards):
        assert torch.equal(shard, single[rank::world])


def test_epochs_longer_than_the_data_chain_whole_passes():
    drawn = order(10, 5, 5).flatten().tolist()  # 25 draws from 10 images
    assert sorted(drawn[:10]) == list(range(10)) and sorted(drawn[10:20]) == list(range(10))
    assert set(drawn[20:]) <= set(range(10))


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 8, 1, 0), "need images"), ((10, 0, 1, 0), "positive batch size"), ((10, 2, 0, 0), "batches per epoch")],
)
def test_shuffle_rejects_empty_epochs(args, message):
    with pytest.raises(InfoGANError, match=message):
        ShardedShuffle(*args)


def test_shuffle_rejects_a_rank_outside_the_world():
    with pytest.raises(InfoGANError, match=r"rank 2 is not in 0..1"):
        ShardedShuffle(10, 2, 1, 0, rank=2, world_size=2)


# ---------------------------------------------------------------- batches drawn on the device


def test_device_batches_index_the_images_in_the_shuffled_order():
    data = images(50)
    sampler = ShardedShuffle(50, 8, 3, seed=4)
    batches = list(DeviceBatches(data, sampler))
    assert len(batches) == len(DeviceBatches(data, sampler)) == 3
    for batch, index in zip(batches, sampler.batches(), strict=True):
        assert batch.dtype == torch.uint8 and batch.shape == (8, 1, 4, 4)
        assert torch.equal(batch, data[index])


def test_device_batches_follow_set_epoch():
    data = torch.arange(64, dtype=torch.uint8).view(64, 1, 1, 1)
    loader = DeviceBatches(data, ShardedShuffle(64, 8, 4, seed=1))
    first = torch.cat(list(loader))
    assert torch.equal(torch.cat(list(loader)), first)  # same epoch, same order
    loader.sampler.set_epoch(1)
    assert not torch.equal(torch.cat(list(loader)), first)


def test_device_batches_resume_after_the_batches_already_taken():
    data = torch.arange(64, dtype=torch.uint8).view(64, 1, 1, 1)
    loader = DeviceBatches(data, ShardedShuffle(64, 8, 5, seed=1))
    loader.sampler.set_epoch(2)
    whole = list(loader)
    partial = iter(loader)
    taken = [next(partial), next(partial)]
    state = loader.state_dict()
    assert state == {"epoch": 2, "taken": 2}
    resumed = DeviceBatches(data, ShardedShuffle(64, 8, 5, seed=1))
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # Lightning sets the epoch after restoring the loader
    rest = list(resumed)
    assert [b.tolist() for b in taken + rest] == [b.tolist() for b in whole]
    assert len(list(resumed)) == 5  # the skip applies once: the next pass is a whole epoch


def test_device_batches_start_a_later_epoch_whole_after_an_end_of_epoch_checkpoint():
    data = torch.arange(64, dtype=torch.uint8).view(64, 1, 1, 1)
    loader = DeviceBatches(data, ShardedShuffle(64, 8, 5, seed=1))
    loader.load_state_dict({"epoch": 2, "taken": 5})
    loader.sampler.set_epoch(3)
    assert len(list(loader)) == 5


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
    trainer.fit(InfoGAN(shipped_model(), shipped_optim(recipe="paper")), datamodule=datamodule)
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
    module = InfoGAN(shipped_model(), shipped_optim(recipe="improved"), shipped_improved(neighbours=3))
    trainer.fit(module, datamodule=datamodule)
    assert len(recorder.batches) == 2
    table = pixel_neighbours(data, 3, progress=False)
    for batch, partners in recorder.batches:
        assert batch.shape == partners.shape == (8, 1, 28, 28)
        for image, partner in zip(batch, partners, strict=True):
            own = int((data == image).flatten(1).all(1).nonzero()[0])
            assert any(torch.equal(partner, data[j]) for j in table[own])
    assert datamodule.on_device is None and datamodule.neighbour_table is None
