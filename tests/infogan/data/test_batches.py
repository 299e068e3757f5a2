"""Tests for infogan.data.batches: the seeded sharded shuffle and batches drawn on the device."""

from __future__ import annotations

import pytest
import torch

from infogan.data.batches import DeviceBatches, ShardedShuffle
from infogan.errors import InfoGANError


def images(n: int, channels: int = 1, size: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


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
