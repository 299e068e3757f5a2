"""Tests for infogan.evaluation.traversal: what changes between frames, captions, and the rendered GIF/PNG files."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn.modules.batchnorm import _BatchNorm

from infogan.config import ModelConfig
from infogan.evaluation.traversal import (
    CAPTION_HEIGHT,
    GAP,
    Frame,
    categorical_traversal,
    class_order,
    continuous_traversal,
    frame_image,
    render_contact_sheet,
    render_traversal_gif,
    sample_grid,
)
from infogan.model.infogan import InfoGAN
from pipeline.params import shipped_model

N = 6  # samples per frame


def calibrated(config: ModelConfig) -> InfoGAN:
    """A fresh model whose generator BN statistics come from one training-mode pass.

    With the initial running statistics (mean 0, var 1) an untrained generator in eval mode outputs
    ~0 everywhere, so every picture would be the same flat grey; calibrated, its samples vary.
    """
    torch.manual_seed(0)
    module = InfoGAN(config)
    for layer in module.generator.modules():
        if isinstance(layer, _BatchNorm):
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average: one pass sets the statistics exactly
    with torch.no_grad():
        module.generator.train()(module.codes.sample(256, torch.Generator().manual_seed(1)).vector)
    return module.train()


@pytest.fixture(scope="module")
def mnist() -> InfoGAN:
    return calibrated(shipped_model())


@pytest.fixture(scope="module")
def mixed() -> InfoGAN:
    return calibrated(shipped_model(categorical=(10, 3), continuous=2))


@pytest.fixture
def record(request):
    """Record every latent batch the given module's generator sees."""

    def attach(module: InfoGAN) -> list[torch.Tensor]:
        seen: list[torch.Tensor] = []
        handle = module.generator.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
        request.addfinalizer(handle.remove)
        return seen

    return attach


def split(module: InfoGAN, vector: torch.Tensor) -> list[torch.Tensor]:
    """noise, each categorical one-hot block, then each continuous code, as separate column blocks."""
    codes = module.codes
    sizes = [codes.noise_dim, *codes.categorical_sizes, *[1] * codes.n_continuous]
    return list(vector.split(sizes, dim=1))


# ---------------------------------------------------------------- categorical traversals


def test_categorical_traversal_frames_and_captions(mnist):
    frames = categorical_traversal(mnist, 0, n_samples=N)
    assert [f.caption for f in frames] == [f"c1 = {k}" for k in range(10)]
    for frame in frames:
        assert isinstance(frame, Frame)
        assert frame.images.shape == (N, 1, 28, 28) and frame.images.dtype == torch.uint8


@pytest.mark.parametrize("code", [0, 1])
def test_only_the_traversed_categorical_code_changes(mixed, record, code):
    seen = record(mixed)
    frames = categorical_traversal(mixed, code, n_samples=N, seed=3)
    k = mixed.codes.categorical_sizes[code]
    assert [f.caption for f in frames] == [f"c{code + 1} = {v}" for v in range(k)]
    assert len(seen) == k
    traversed = 1 + code  # block index: noise comes first
    first = split(mixed, seen[0])
    for value, vector in enumerate(seen):
        blocks = split(mixed, vector)
        assert torch.equal(blocks[traversed].argmax(1), torch.full((N,), value))
        assert torch.equal(blocks[traversed].sum(1), torch.ones(N))
        for i, (block, reference) in enumerate(zip(blocks, first, strict=True)):
            if i != traversed:
                assert torch.equal(block, reference), f"block {i} changed while traversing code {code}"
    # continuous codes are held at 0; the columns cycle through the first code's classes
    assert all((b == 0).all() for b in first[3:])
    if code != 0:
        assert torch.equal(first[1].argmax(1), torch.arange(N) % 10)


MATCHING = {0: 3, 1: 0, 2: 9, 3: 1, 4: 4, 5: 8, 6: 2, 7: 6, 8: 5, 9: 7}  # code value -> label
BY_LABEL = sorted(MATCHING, key=MATCHING.get)  # [1, 3, 6, 0, 4, 8, 7, 9, 5, 2]


def test_class_order_follows_the_matched_labels():
    assert class_order(10, MATCHING) == BY_LABEL
    assert class_order(4, None) == [0, 1, 2, 3]
    assert class_order(5, {4: 0, 2: 1}) == [4, 2, 0, 1, 3]  # unmatched values last, in their own order


def test_matched_categorical_traversal_goes_from_label_0_to_9(mnist, record):
    seen = record(mnist)
    frames = categorical_traversal(mnist, 0, n_samples=N, matching=MATCHING)
    assert [f.caption for f in frames] == [f"c1 = {v} (label {MATCHING[v]})" for v in BY_LABEL]
    for value, vector in zip(BY_LABEL, seen, strict=True):
        assert torch.equal(split(mnist, vector)[1].argmax(1), torch.full((N,), value))
    # the same pictures as the unordered traversal, only reordered
    plain = categorical_traversal(mnist, 0, n_samples=N)
    for value, frame in zip(BY_LABEL, frames, strict=True):
        assert torch.equal(frame.images, plain[value].images)


def test_matching_applies_to_the_first_code_only(mixed):
    frames = categorical_traversal(mixed, 1, n_samples=N, matching=MATCHING)
    assert [f.caption for f in frames] == ["c2 = 0", "c2 = 1", "c2 = 2"]


def test_matched_continuous_traversal_columns_go_from_label_0_to_9(mnist, record):
    seen = record(mnist)
    frames = continuous_traversal(mnist, 0, [-1.0, 1.0], n_samples=12, matching=MATCHING, factor="slant")
    assert [f.caption for f in frames] == ["c2 (slant) = -1.00", "c2 (slant) = +1.00"]
    columns = split(mnist, seen[0])[1].argmax(1)
    assert columns.tolist() == BY_LABEL + BY_LABEL[:2]


def test_frames_differ_when_the_code_changes(mnist):
    frames = categorical_traversal(mnist, 0, n_samples=N)
    for a, b in itertools.pairwise(frames):
        assert not torch.equal(a.images, b.images)
    # the samples of one frame differ too (different noise)
    assert not torch.equal(frames[0].images[0], frames[0].images[1])


def test_same_seed_gives_identical_frames(mnist):
    a = categorical_traversal(mnist, 0, n_samples=N, seed=7)
    b = categorical_traversal(mnist, 0, n_samples=N, seed=7)
    c = categorical_traversal(mnist, 0, n_samples=N, seed=8)
    assert all(torch.equal(x.images, y.images) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0].images, c[0].images)


@pytest.mark.parametrize("training", [True, False], ids=["from-train", "from-eval"])
def test_traversal_restores_the_mode(mnist, training):
    mnist.train(training)
    categorical_traversal(mnist, 0, n_samples=2)
    continuous_traversal(mnist, 0, [0.0], n_samples=2)
    assert mnist.training is training
    mnist.train()


# ---------------------------------------------------------------- continuous traversals


def test_continuous_traversal_captions_name_codes_after_the_categorical_ones(mnist, mixed):
    values = [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert [f.caption for f in continuous_traversal(mnist, 0, values, n_samples=2)] == [
        "c2 = -2.00",
        "c2 = -1.00",
        "c2 = +0.00",
        "c2 = +1.00",
        "c2 = +2.00",
    ]
    assert [f.caption for f in continuous_traversal(mnist, 1, [-2, 1], n_samples=2)] == ["c3 = -2.00", "c3 = +1.00"]
    assert [f.caption for f in continuous_traversal(mixed, 1, np.linspace(-1, 1, 3), n_samples=2)] == [
        "c4 = -1.00",
        "c4 = +0.00",
        "c4 = +1.00",
    ]


def test_only_the_traversed_continuous_code_changes(mixed, record):
    seen = record(mixed)
    values = [-2.0, 0.5, 2.0]
    frames = continuous_traversal(mixed, 1, values, n_samples=N, seed=2)
    assert len(frames) == len(seen) == 3
    first = split(mixed, seen[0])
    traversed = 1 + 2 + 1  # noise, two categorical codes, continuous code 0, then code 1
    for value, vector in zip(values, seen, strict=True):
        blocks = split(mixed, vector)
        assert torch.equal(blocks[traversed], torch.full((N, 1), value))
        for i, (block, reference) in enumerate(zip(blocks, first, strict=True)):
            if i != traversed:
                assert torch.equal(block, reference)
    assert torch.equal(first[1].argmax(1), torch.arange(N) % 10)
    assert not torch.equal(frames[0].images, frames[-1].images)


# ---------------------------------------------------------------- rendering


def fake_frames(n_frames: int, n: int = 4, channels: int = 1, h: int = 5, w: int = 7) -> list[Frame]:
    g = torch.Generator().manual_seed(0)
    return [
        Frame(f"c1 = {i}", torch.randint(0, 256, (n, channels, h, w), dtype=torch.uint8, generator=g))
        for i in range(n_frames)
    ]


@pytest.mark.parametrize(("n_frames", "n", "channels", "scale"), [(3, 4, 1, 2), (5, 2, 3, 3), (10, 10, 1, 1)], ids=str)
def test_render_traversal_gif(tmp_path, n_frames, n, channels, scale):
    h, w = 5, 7
    frames = fake_frames(n_frames, n, channels, h, w)
    path = tmp_path / "out" / "traversal.gif"  # the folder is created
    render_traversal_gif(frames, path, scale=scale, frame_ms=300)
    assert sorted(p.name for p in path.parent.iterdir()) == ["traversal.gif"]  # no '.partial' left over
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == n_frames
        assert gif.size == ((n * (w + GAP) - GAP) * scale, h * scale + CAPTION_HEIGHT)
        assert gif.info.get("loop") == 0  # loops forever
        assert gif.info.get("duration") == 300


def test_frame_image_shows_the_tiles_below_the_caption():
    frame = fake_frames(1, n=3, channels=3)[0]
    picture = np.asarray(frame_image(frame, scale=2))
    tiles = picture[CAPTION_HEIGHT:]
    first = frame.images[0].permute(1, 2, 0).numpy().repeat(2, 0).repeat(2, 1)
    assert np.array_equal(tiles[:, : 7 * 2], first)
    assert (tiles[:, 7 * 2 : (7 + GAP) * 2] == 255).all()  # white gap
    assert (picture[:CAPTION_HEIGHT] < 128).any()  # some dark caption text


def test_render_contact_sheet_has_one_row_per_frame(tmp_path):
    frames = fake_frames(4, n=3)
    scale, h, w = 2, 5, 7
    path = tmp_path / "sheet.png"
    render_contact_sheet(frames, path, scale=scale)
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]
    with Image.open(path) as png:
        assert png.format == "PNG"
        sheet = np.asarray(png.convert("RGB"))
    row_height, row_width = h * scale, (3 * (w + GAP) - GAP) * scale
    assert sheet.shape[0] == 4 * (row_height + GAP)
    left = sheet.shape[1] - row_width  # the caption column
    assert left > 0
    for i, frame in enumerate(frames):
        y = i * (row_height + GAP)
        tile = frame.images[0, 0].numpy().repeat(scale, 0).repeat(scale, 1)
        assert np.array_equal(sheet[y : y + row_height, left : left + w * scale, 0], tile), f"row {i}"
        assert (sheet[y : y + row_height, :left] < 128).any()  # its caption


def test_rendering_replaces_an_existing_file(tmp_path):
    path = tmp_path / "sheet.png"
    path.write_bytes(b"old")
    render_contact_sheet(fake_frames(2), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]


def test_sample_grid_size_and_rows(mnist):
    grid = sample_grid(mnist, n_columns=4, seed=0)
    assert grid.size == (4 * (28 + GAP) - GAP, 10 * (28 + GAP) - GAP)
    pixels = np.asarray(grid)
    frames = categorical_traversal(mnist, 0, n_samples=4, seed=0)
    for i, frame in enumerate(frames):  # row i is class i of c1, with the traversal's fixed noise
        y = i * (28 + GAP)
        assert np.array_equal(pixels[y : y + 28, :28, 0], frame.images[0, 0].numpy())


def test_sample_grid_without_categorical_codes():
    module = calibrated(shipped_model(categorical=(), continuous=2))
    grid = sample_grid(module, n_columns=3)
    assert grid.size == (3 * (28 + GAP) - GAP, 5 * (28 + GAP) - GAP)  # five values of c1 in [-1, 1]
