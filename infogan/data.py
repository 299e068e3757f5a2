"""Image datasets as uint8 tensors: saving and loading prepared splits, and the training loader."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

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


def train_loader(
    images: torch.Tensor, batch_size: int, batches_per_epoch: int, seed: int, num_workers: int = 0
) -> DataLoader:
    """Shuffled batches of uint8 images; an epoch is `batches_per_epoch` batches, reproducible from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(images, num_samples=batch_size * batches_per_epoch, generator=generator)
    return DataLoader(
        TensorDataset(images),
        batch_size=batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
