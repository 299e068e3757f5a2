"""Latent traversals: vary one code, hold everything else fixed, and render captioned GIFs and sheets.

A traversal is a list of `Frame`s. Every frame is a row of samples; sample j keeps the same noise
(and the same values of the other codes) in every frame, so only the traversed code changes.
Codes are named as in the paper: c1, c2, ... counting categorical codes first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from infogan.atomic import atomic_path
from infogan.data.images import to_uint8
from infogan.model.codes import fixed_codes
from infogan.model.infogan import InfoGAN

CAPTION_HEIGHT = 18
GAP = 2  # pixels between tiles


@dataclass
class Frame:
    caption: str
    images: torch.Tensor  # (n, C, H, W) uint8


@torch.no_grad()
def _generate(model: InfoGAN, noise, categorical, continuous) -> torch.Tensor:
    latent = model.codes.assemble(noise, categorical, continuous)
    return to_uint8(model(latent.vector)).cpu()


def class_order(size: int, matching: Mapping[int, int] | None) -> list[int]:
    """The values of a `size`-class code ordered by the label each was matched to (values without
    a match last, in their own order); 0..size-1 without a matching."""
    matching = matching or {}
    return sorted(range(size), key=lambda value: (value not in matching, matching.get(value, 0), value))


def categorical_traversal(
    model: InfoGAN, code: int, n_samples: int = 10, seed: int = 0, matching: Mapping[int, int] | None = None
) -> list[Frame]:
    """One frame per class of categorical code `code`; continuous codes at 0.

    `matching` ({code value: label}, from `metrics.categorical_code_matching`) orders the frames by
    label and names the label in each caption; it is only for code 0, the one matched to labels.
    """
    was_training = model.training
    model.eval()
    noise, categorical, continuous = fixed_codes(model.codes, n_samples, seed, device=model.device)
    matching = matching if code == 0 else None
    frames = []
    for value in class_order(model.codes.categorical_sizes[code], matching):
        categorical[:, code] = value
        caption = f"{model.codes.categorical_name(code)} = {value}"
        if matching and value in matching:
            caption += f" (label {matching[value]})"
        frames.append(Frame(caption, _generate(model, noise, categorical, continuous)))
    model.train(was_training)
    return frames


def continuous_traversal(
    model: InfoGAN,
    code: int,
    values: Sequence[float],
    n_samples: int = 10,
    seed: int = 0,
    matching: Mapping[int, int] | None = None,
    factor: str | None = None,
) -> list[Frame]:
    """One frame per value of continuous code `code`; columns cycle through the first categorical
    code's classes, ordered by label when `matching` is given. `factor` names what the code was
    found to control, in the captions."""
    was_training = model.training
    model.eval()
    order = class_order(model.codes.categorical_sizes[0], matching) if model.codes.categorical_sizes else None
    noise, categorical, continuous = fixed_codes(model.codes, n_samples, seed, order, model.device)
    name = model.codes.continuous_name(code) + (f" ({factor})" if factor else "")
    frames = []
    for value in values:
        continuous[:, code] = value
        frames.append(Frame(f"{name} = {value:+.2f}", _generate(model, noise, categorical, continuous)))
    model.train(was_training)
    return frames


def _row(images: torch.Tensor, scale: int) -> Image.Image:
    """(n, C, H, W) uint8 -> one RGB strip of tiles, each upscaled by `scale` (nearest)."""
    n, c, h, w = images.shape
    tiles = images.expand(n, 3, h, w) if c == 1 else images
    strip = np.full((h, n * (w + GAP) - GAP, 3), 255, dtype=np.uint8)
    for j, tile in enumerate(tiles.permute(0, 2, 3, 1).numpy()):
        strip[:, j * (w + GAP) : j * (w + GAP) + w] = tile
    image = Image.fromarray(strip)
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default(size=CAPTION_HEIGHT - 4)


def frame_image(frame: Frame, scale: int = 2) -> Image.Image:
    """A frame as a picture: the caption on a white strip above the row of samples."""
    row = _row(frame.images, scale)
    canvas = Image.new("RGB", (row.width, row.height + CAPTION_HEIGHT), "white")
    canvas.paste(row, (0, CAPTION_HEIGHT))
    ImageDraw.Draw(canvas).text((4, 1), frame.caption, fill="black", font=_font())
    return canvas


def render_traversal_gif(frames: list[Frame], path: Path, scale: int = 2, frame_ms: int = 500) -> None:
    """Write an endlessly looping GIF, one captioned frame per traversal step, atomically."""
    pictures = np.stack([np.asarray(frame_image(f, scale)) for f in frames])
    # encoded in memory, then written as bytes: a writer that fails to open its file stays open
    # and tries again from its destructor, which prints a traceback after the stage's error line
    encoded = iio.imwrite("<bytes>", pictures, extension=".gif", duration=frame_ms, loop=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded)


def render_contact_sheet(frames: list[Frame], path: Path, scale: int = 2) -> None:
    """Write every frame of a traversal as one PNG, captions in a column on the left, atomically."""
    rows = [_row(f.images, scale) for f in frames]
    label_width = 8 + max(int(_font().getlength(f.caption)) for f in frames)
    sheet = Image.new("RGB", (label_width + rows[0].width, sum(r.height + GAP for r in rows)), "white")
    draw = ImageDraw.Draw(sheet)
    y = 0
    for frame, row in zip(frames, rows, strict=True):
        sheet.paste(row, (label_width, y))
        draw.text((4, y + row.height // 2 - CAPTION_HEIGHT // 2), frame.caption, fill="black", font=_font())
        y += row.height + GAP
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")


def sample_grid(model: InfoGAN, n_columns: int = 10, seed: int = 0) -> Image.Image:
    """Rows = classes of the first categorical code, columns = fixed noise: a training snapshot."""
    if model.codes.categorical_sizes:
        frames = categorical_traversal(model, 0, n_columns, seed)
    else:
        frames = continuous_traversal(model, 0, np.linspace(-1, 1, 5), n_columns, seed)
    rows = [_row(f.images, 1) for f in frames]
    grid = Image.new("RGB", (rows[0].width, sum(r.height + GAP for r in rows) - GAP), "white")
    for i, row in enumerate(rows):
        grid.paste(row, (0, i * (row.height + GAP)))
    return grid
