"""Render's file naming: frames in label order, continuous GIFs named by factor, stale files removed."""

from __future__ import annotations

import torch

from infogan.config import ModelConfig, OptimConfig, RenderConfig
from infogan.module import InfoGAN
from pipeline.render import render_traversals

CONFIG = RenderConfig(continuous_frames=3, samples_per_row=4, scale=1)


def module() -> InfoGAN:
    torch.manual_seed(0)
    return InfoGAN(ModelConfig(), OptimConfig()).eval()


def test_named_codes_get_their_property_as_file_name(tmp_path):
    written = render_traversals(module(), CONFIG, tmp_path, {}, {1: "thickness"})
    expected = {"categorical_0", "continuous_0", "thickness"}
    assert {p.name for p in written} == {f"{stem}.{ext}" for stem in expected for ext in ("gif", "png")}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_our_stale_files_go_and_everything_else_stays(tmp_path):
    for name in ("continuous_1.gif", "continuous_1.png", "slant.gif", "categorical_3.png", "notes.txt", "other.gif"):
        (tmp_path / name).write_bytes(b"old")
    render_traversals(module(), CONFIG, tmp_path, {}, {0: "slant"})
    # categorical_3.png belongs to a code this model lacks: gone; notes.txt and other.gif are not ours
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "categorical_0.gif",
            "categorical_0.png",
            "slant.gif",
            "slant.png",
            "continuous_1.gif",
            "continuous_1.png",
            "notes.txt",
            "other.gif",
        ]
    )
    for rewritten in ("slant.gif", "continuous_1.gif"):
        assert (tmp_path / rewritten).read_bytes() != b"old"
    assert (tmp_path / "other.gif").read_bytes() == b"old"
