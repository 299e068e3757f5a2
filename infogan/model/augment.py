"""Nuisance transformations for the improved recipe, drawn per image on the images' device.

`nuisance(images, config)` rotates, shifts and changes the stroke thickness of a batch in [-1, 1]:
the things a digit's identity does not depend on, and the things the continuous codes are meant to
own. The improved recipe asks Q's categorical code to be unchanged by them (infogan/training/module.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from infogan.config import ImprovedConfig


def affine_jitter(
    images: torch.Tensor, max_rotation_deg: float, max_shift_px: float, max_scale: float = 0.0
) -> torch.Tensor:
    """Rotate each image by a uniform angle in ±max_rotation_deg about its centre, stretch it by a
    uniform factor in 1 ± max_scale on each axis independently (a change of width and height, not
    only of size), and shift it by a uniform offset in ±max_shift_px on each axis; what moves in
    from outside is background (-1)."""
    b, _, h, w = images.shape
    device = images.device
    angle = (torch.rand(b, device=device) * 2 - 1) * math.radians(max_rotation_deg)
    # affine_grid's coordinates run from -1 to 1 across the image: one pixel is 2 / side
    pixel = torch.tensor([2.0 / w, 2.0 / h], device=device)
    shift = (torch.rand(b, 2, device=device) * 2 - 1) * max_shift_px * pixel
    cos, sin = angle.cos(), angle.sin()
    # affine_grid maps output to input coordinates: dividing by the factor stretches the image by it.
    # Drawn last, and only when asked for, so that runs without it keep their random stream
    stretch = (
        1 + (torch.rand(b, 2, device=device) * 2 - 1) * max_scale if max_scale > 0 else torch.ones(b, 2, device=device)
    )
    sx, sy = stretch[:, 0], stretch[:, 1]  # (B,) each
    theta = torch.stack(
        [torch.stack([cos / sx, -sin / sx, shift[:, 0]], 1), torch.stack([sin / sy, cos / sy, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # sampled in [0, 2] so that zero padding is the background, then back to [-1, 1]
    moved = F.grid_sample(images.float() + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (moved - 1).to(images.dtype)


def thickness_jitter(images: torch.Tensor) -> torch.Tensor:
    """Per image, one of: erode (3x3 minimum), keep, dilate (3x3 maximum), with equal chance.
    Ink is bright in [-1, 1] images, so a maximum thickens strokes and a minimum thins them."""
    dilated = F.max_pool2d(images, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-images, 3, stride=1, padding=1)
    choice = torch.randint(0, 3, (images.shape[0], 1, 1, 1), device=images.device)
    return torch.where(choice == 0, eroded, torch.where(choice == 2, dilated, images))


def nuisance(images: torch.Tensor, config: ImprovedConfig) -> torch.Tensor:
    """`images` (B, C, H, W) in [-1, 1], each independently thickened or thinned, rotated, stretched and shifted."""
    out = images
    if config.thickness:
        out = thickness_jitter(out)
    if config.rotation_deg > 0 or config.shift_px > 0 or config.scale > 0:
        out = affine_jitter(out, config.rotation_deg, config.shift_px, config.scale)
    return out
