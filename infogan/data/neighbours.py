"""Nearest neighbours of training images in pixel space, for the improved recipe's real-image view.

With `improved.neighbours: k`, Q's class of a real image x is compared with its class of T(x'),
where x' is one of x's k nearest training images by Euclidean distance between pixels (drawn anew
each time), not with T(x) itself. On MNIST a near neighbour is nearly always the same digit (how
often: docs/digits.md). So the comparison asks
Q's partition to follow the data's neighbourhoods, which a split of one digit by a style that varies
smoothly (an open or a closed top) cuts through, and a split by digit mostly does not.

The table depends on the training images alone, so the prepare stage finds it once
(`prepare.<dataset>.neighbours` columns, into neighbours.pt beside the splits) and every training
reads its first k columns; a dataset whose prepare stores none has training find them instead.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from infogan.atomic import atomic_path
from infogan.errors import InfoGANError
from infogan.progress import Progress

FILE = "neighbours.pt"  # in the prepared dataset folder


def pixel_neighbours(images: torch.Tensor, k: int, chunk: int = 2048, progress: bool = True) -> torch.Tensor:
    """The indices (N, k), int64 on the images' device, of each image's k nearest other images in
    `images` (N, C, H, W), nearest first. Computed in chunks of `chunk` rows, on the images' device
    (MNIST's 60,000 take a minute or so on a CPU: docs/digits.md)."""
    n = images.shape[0]
    if not 0 < k < n:
        raise InfoGANError(f"need 0 < neighbours < the number of training images ({n}); got {k}")
    flat = images.flatten(1).float().div_(255.0)
    squared = flat.square().sum(1)
    found = torch.empty(n, k, dtype=torch.long, device=images.device)
    with Progress(n, "nearest neighbours", "img", enabled=progress) as bar:
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            # |a - b|^2 = |a|^2 - 2 a.b + |b|^2; an image is not its own neighbour
            distance = squared[rows, None] - 2 * flat[rows] @ flat.T + squared[None]
            own = torch.arange(rows.start, rows.stop, device=images.device)
            distance[own - start, own] = float("inf")
            found[rows] = distance.topk(k, dim=1, largest=False).indices
            bar.update(rows.stop - rows.start)
    return found


def save_neighbours(table: torch.Tensor, out_dir: Path) -> Path:
    """Write a `pixel_neighbours` table to out_dir/neighbours.pt, atomically, as int32 (N, k)."""
    path = out_dir / FILE
    with atomic_path(path) as tmp:
        torch.save({"neighbours": table.to(torch.int32).contiguous()}, tmp)
    return path


def load_neighbours(data_dir: Path, k: int, n_images: int) -> torch.Tensor | None:
    """The first k columns, as int64 (n_images, k), of the table prepare stored in data_dir; None when
    it stored fewer than k columns or none. A table that is not one for these images is an error."""
    path = data_dir / FILE
    if not path.is_file():
        return None
    try:
        table = torch.load(path, map_location="cpu", weights_only=True).get("neighbours")
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, IndexError, AttributeError) as err:
        raise InfoGANError(f"{path} cannot be read as a neighbour table ({type(err).__name__}); rerun prepare") from err
    if not (
        isinstance(table, torch.Tensor)
        and table.dim() == 2
        and table.shape[0] == n_images
        and not table.dtype.is_floating_point
        and (table.numel() == 0 or 0 <= int(table.min()) <= int(table.max()) < n_images)
    ):
        raise InfoGANError(f"{path} is not a neighbour table of the {n_images} training images; rerun prepare")
    return table[:, :k].long() if table.shape[1] >= k else None
