"""Nearest neighbours of training images in pixel space, for the improved recipe's real-image view.

With `improved.neighbours: k`, Q's class of a real image x is compared with its class of T(x'),
where x' is one of x's k nearest training images by Euclidean distance between pixels (drawn anew
each time), not with T(x) itself. On MNIST a near neighbour is nearly always the same digit (how
often: docs/digits.md). So the comparison asks
Q's partition to follow the data's neighbourhoods, which a split of one digit by a style that varies
smoothly (an open or a closed top) cuts through, and a split by digit mostly does not.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from infogan.errors import InfoGANError


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
    with tqdm(total=n, desc="nearest neighbours", unit="img", disable=not progress) as bar:
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            # |a - b|^2 = |a|^2 - 2 a.b + |b|^2; an image is not its own neighbour
            distance = squared[rows, None] - 2 * flat[rows] @ flat.T + squared[None]
            own = torch.arange(rows.start, rows.stop, device=images.device)
            distance[own - start, own] = float("inf")
            found[rows] = distance.topk(k, dim=1, largest=False).indices
            bar.update(rows.stop - rows.start)
    return found
