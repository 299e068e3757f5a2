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


PROJECTION = 128  # principal directions the first pass compares images in
SAMPLE = 20_000  # images the directions are found from (evenly spaced)
RERANK = 128  # rows whose candidates are measured in pixels at once


def _directions(images: torch.Tensor) -> torch.Tensor:
    """(pixels, PROJECTION) orthonormal columns: the main principal directions of an even sample of
    `images`, or the identity when an image has no more pixels than that."""
    pixels = images[0].numel()
    if pixels <= PROJECTION:
        return torch.eye(pixels, device=images.device)
    sample = images[:: max(1, len(images) // SAMPLE)].flatten(1)
    mean = sum(block.double().sum(0) for block in sample.split(2048)) / len(sample)
    scatter = torch.zeros(pixels, pixels, dtype=torch.float64, device=images.device)
    for block in sample.split(2048):  # block by block: only 2,048 images are ever held as fp64
        centred = block.double() - mean
        scatter.addmm_(centred.T, centred)
    _, vectors = torch.linalg.eigh(scatter)  # ascending eigenvalues
    return vectors[:, -PROJECTION:].float().contiguous()


def _distances(images: torch.Tensor, rows: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """Squared pixel distances, exact integers (int64), from images[rows] to each of their `others`
    (len(rows), columns), in pieces of RERANK rows."""
    parts = []
    for part in range(0, len(rows), RERANK):
        query = images[rows[part : part + RERANK]].flatten(1).int()
        pixels = images[others[part : part + RERANK]].flatten(2).int()  # (rows, columns, pixels)
        parts.append(pixels.sub_(query[:, None]).square_().sum(2))
    return torch.cat(parts)


def _nearest(distance: torch.Tensor, index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's k smallest distances and their indices, nearest first; equal distances by index."""
    index, order = index.sort(1)
    distance = distance.gather(1, order)
    order = distance.sort(dim=1, stable=True).indices[:, :k]
    return distance.gather(1, order), index.gather(1, order)


def _compared_with_all(images: torch.Tensor, rows: torch.Tensor, count: int, block: int = 8192) -> torch.Tensor:
    """The `count` nearest other images of images[rows] among all of them, in fp64, `block` images at a
    time (only one block is ever held as fp64)."""
    query = images[rows].flatten(1).double()
    best = torch.full((len(rows), count), float("inf"), dtype=torch.float64, device=images.device)
    found = torch.zeros(len(rows), count, dtype=torch.long, device=images.device)
    for start in range(0, len(images), block):
        others = images[start : start + block].flatten(1).double()
        distance = torch.cdist(query, others)
        own = ((rows >= start) & (rows < start + len(others))).nonzero().squeeze(1)
        distance[own, rows[own] - start] = float("inf")
        columns = torch.arange(start, start + len(others), device=images.device).expand(len(rows), -1)
        best, where = torch.cat([best, distance], 1).topk(count, dim=1, largest=False)
        found = torch.cat([found, columns], 1).gather(1, where)
    return found


def pixel_neighbours(images: torch.Tensor, k: int, chunk: int = 1024, progress: bool = True) -> torch.Tensor:
    """The indices (N, k), int64 on the images' device, of each image's k nearest other images in
    `images` (N, C, H, W, uint8) by Euclidean distance between pixels, nearest first (equal distances:
    the lower index first).

    Exact, in two passes. The first compares images along their PROJECTION main principal directions,
    where no two are farther apart than in pixels, and proposes each image's `candidates` nearest.
    The second measures the candidates in pixels, as exact integers, and keeps the k nearest. Those
    are the true k nearest when the k-th is nearer, in pixels, than the last candidate is in the
    projection: every image left out is at least that far. A row where that does not hold is compared
    with every image in pixels. Chunks of `chunk` rows; MNIST's 60,000 images take about a minute,
    CelebA's 162,770 about four on a 2-core CPU (docs/benchmarks.md)."""
    n = images.shape[0]
    if not 0 < k < n:
        raise InfoGANError(f"need 0 < neighbours < the number of training images ({n}); got {k}")
    candidates = min(n - 1, 4 * k + 16)
    basis = _directions(images)
    projected = torch.cat([block.flatten(1).float() @ basis for block in images.split(chunk)])
    projected_sq = projected.square().sum(1)
    # the rounding of the projected distances below (|a|^2 - 2 a.b + |b|^2 in fp32), with room to spare
    slack = 1e-4 * (projected_sq + projected_sq.max())
    found = torch.empty(n, k, dtype=torch.long, device=images.device)
    unproven = []
    with Progress(n, "nearest neighbours", "img", enabled=progress) as bar:
        for start in range(0, n, chunk):
            rows = torch.arange(start, min(start + chunk, n), device=images.device)
            projected_distance = torch.addmm(projected_sq[None], projected[rows], projected.T, alpha=-2)
            projected_distance += projected_sq[rows, None]
            projected_distance[rows - start, rows] = float("inf")  # an image is not its own neighbour
            bound, proposed = projected_distance.topk(candidates, dim=1, largest=False)
            distance, found[rows] = _nearest(_distances(images, rows, proposed), proposed, k)
            unproven.append(rows[distance[:, -1] >= bound[:, -1] - slack[rows]])
            bar.update(len(rows))
    unproven = torch.cat(unproven)
    if progress and len(unproven):
        print(f"nearest neighbours: {len(unproven):,} images compared with every image", flush=True)
    for rows in (unproven[start : start + chunk] for start in range(0, len(unproven), chunk)):
        proposed = _compared_with_all(images, rows, candidates)
        found[rows] = _nearest(_distances(images, rows, proposed), proposed, k)[1]
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
