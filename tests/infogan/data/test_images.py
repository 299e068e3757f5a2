"""Tests for infogan.data.images: pixel ranges and prepared splits on disk."""

from __future__ import annotations

import pytest
import torch

from infogan.data.images import load_split, save_split, to_model_range, to_uint8
from infogan.errors import InfoGANError


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
