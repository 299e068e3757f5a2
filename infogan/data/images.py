"""Images as uint8 tensors: the model's value range, and the prepared splits on disk."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from infogan.atomic import atomic_path
from infogan.errors import InfoGANError


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float images in [-1, 1], the generator's tanh range."""
    return images.float().div(127.5).sub_(1.0)  # div makes a new tensor: the input is never modified


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 in [0, 255]."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def save_split(images: torch.Tensor, labels: torch.Tensor, path: Path) -> None:
    """Write one split as {'images': uint8 (N, C, H, W), 'labels': int64 (N,)}, atomically."""
    with atomic_path(path) as tmp:
        torch.save({"images": images.contiguous(), "labels": labels.contiguous()}, tmp)


def load_split(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a split written by `save_split`, checking what it holds."""
    if not path.is_file():
        raise InfoGANError(f"prepared split {path} does not exist; run the prepare stage first (dvc repro prepare)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:  # not a torch file, truncated
        raise InfoGANError(f"{path} cannot be read as a prepared split ({type(err).__name__}); rerun prepare") from err
    if not isinstance(data, dict):
        data = {}
    images, labels = data.get("images"), data.get("labels")
    if not (
        isinstance(images, torch.Tensor)
        and images.dtype == torch.uint8
        and images.dim() == 4
        and isinstance(labels, torch.Tensor)
        and labels.shape == images.shape[:1]
    ):
        raise InfoGANError(f"{path} is not a prepared split (uint8 images (N, C, H, W) and N labels); rerun prepare")
    return images, labels


def save_digit_splits(dataset: str, source_md5: dict[str, str], splits: dict, out_dir: Path) -> dict:
    """Write each of `splits` ({split: (images, labels)}, labels the digits 0..9) to out_dir/<split>.pt;
    return the prepared folder's manifest."""
    manifest = {"dataset": dataset, "labels": "digits", "source_md5": source_md5, "splits": {}}
    for split, (images, labels) in splits.items():
        save_split(images, labels, out_dir / f"{split}.pt")
        summary = {"count": len(images), "image_shape": list(images.shape[1:]), "classes": int(labels.max()) + 1}
        manifest["splits"][split] = summary
    return manifest
