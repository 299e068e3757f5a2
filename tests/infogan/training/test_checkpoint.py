"""Tests for infogan.training.checkpoint: the random state round trip, and safe reading of checkpoint files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from infogan.errors import InfoGANError
from infogan.training.checkpoint import capture_rng, read_checkpoint, restore_rng


def draws() -> tuple:
    return torch.rand(3).tolist(), random.random(), np.random.rand()


def test_restored_generators_draw_what_they_would_have_drawn(tmp_path):
    torch.manual_seed(1), random.seed(2), np.random.seed(3)
    draws()
    state = capture_rng()
    expected = draws()
    torch.save({"rng": state}, tmp_path / "rng.pt")  # through a file, as in a checkpoint
    draws()  # the generators move on
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])  # loadable without unpickling code
    assert draws() == expected


def test_reading_a_missing_checkpoint_names_it(tmp_path):
    with pytest.raises(InfoGANError, match=r"checkpoint .*nothing.ckpt does not exist"):
        read_checkpoint(tmp_path / "nothing.ckpt")


def test_reading_an_empty_file_says_it_is_damaged(tmp_path):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(InfoGANError, match=r"is not a readable checkpoint|is not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "empty.ckpt")
