"""MNIST acquisition: fetch and verify the four raw IDX files, then parse them into tensors.

This is library code: it knows nothing of DVC, params files or fixed paths. The caller
passes the raw directory and the mirror list. Every file is verified against its standard
MD5 before use, whether it was downloaded or placed by hand (see infogan.data.download), so a
corrupt or truncated file is never silently trained on.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence
from math import prod
from pathlib import Path

import torch

from infogan.config import Count, PositiveFloat, Section, Text
from infogan.data.dataset import Dataset
from infogan.data.download import fetch_verified
from infogan.data.images import save_digit_splits
from infogan.errors import InfoGANError

MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# MD5 of each file's decompressed content (of the files above): a copy gunzipped and gzipped again
# has other bytes, and so another MD5, but this content, and is accepted
MNIST_CONTENT_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SPLIT_SIZES: dict[str, int] = {"train": 60000, "test": 10000}


class MnistSource(Section):
    """Where MNIST comes from (params section `prepare.mnist`)."""

    mirrors: tuple[Text, ...]  # tried in order until one serves a file with the right MD5
    timeout_s: PositiveFloat
    neighbours: Count  # each training image's nearest training images prepare stores (neighbours.pt); 0: none


def fetch_mnist(
    raw_dir: Path, mirrors: Sequence[str], timeout_s: float = 30.0, progress: bool = True
) -> dict[str, str]:
    """Make sure the four files are in raw_dir and verified; return {name: md5}.

    Files already present are verified and used without any network access; a present file
    with a wrong MD5 is moved to <name>.bad (<name>.bad.1, ... if taken) and is an error (never
    silently replaced), unless its decompressed content is the genuine one (MNIST_CONTENT_MD5).
    Missing files are downloaded from the mirrors in order, each verified before it gets
    its final name.
    """
    return fetch_verified(
        raw_dir, MNIST_FILES, mirrors, "MNIST", timeout_s=timeout_s, progress=progress, content_md5=MNIST_CONTENT_MD5
    )


def read_idx(path: Path) -> torch.Tensor:
    """Parse a gzip-compressed IDX file (unsigned byte data) into a uint8 tensor of its declared shape."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:  # missing, not gzip, or a truncated gzip stream
        raise InfoGANError(f"Cannot read IDX file {path}: {err}. Delete it and fetch MNIST again.") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] == 0:
        raise InfoGANError(
            f"{path} is not an unsigned-byte IDX file (bad magic number {data[:4].hex() or 'empty'}). "
            "Delete it and fetch MNIST again."
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InfoGANError(f"IDX file {path} is truncated inside its header. Delete it and fetch MNIST again.")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected, actual = prod(shape), len(data) - header
    if actual != expected:
        raise InfoGANError(
            f"IDX file {path} declares shape {tuple(shape)} ({expected} bytes) but holds {actual} bytes. "
            "Delete it and fetch MNIST again."
        )
    # bytearray gives torch a writable buffer it can own, so no clone is needed.
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(shape)


def load_mnist_split(raw_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (images uint8 (N, 1, 28, 28), labels int64 (N,)) for split 'train' or 'test'."""
    if split not in SPLIT_FILES:
        raise InfoGANError(f"Unknown MNIST split {split!r}; allowed values: {', '.join(SPLIT_FILES)}")
    image_file, label_file = (Path(raw_dir) / name for name in SPLIT_FILES[split])
    images, labels = read_idx(image_file), read_idx(label_file)
    n = SPLIT_SIZES[split]
    if images.ndim != 3 or tuple(images.shape[1:]) != (28, 28):
        raise InfoGANError(f"{image_file} holds shape {tuple(images.shape)}, expected (N, 28, 28).")
    if labels.ndim != 1:
        raise InfoGANError(f"{label_file} holds shape {tuple(labels.shape)}, expected (N,).")
    if images.shape[0] != labels.shape[0]:
        raise InfoGANError(
            f"MNIST {split} split has {images.shape[0]} images but {labels.shape[0]} labels "
            f"({image_file}, {label_file})."
        )
    if images.shape[0] != n:
        raise InfoGANError(f"MNIST {split} split has {images.shape[0]} examples, expected {n} ({image_file}).")
    if labels.numel() and int(labels.max()) > 9:
        raise InfoGANError(f"{label_file} holds label {int(labels.max())}; MNIST labels are 0..9.")
    return images.unsqueeze(1), labels.long()


def verify_mnist(source: MnistSource, raw_dir: Path) -> dict:
    """Download what is missing from raw_dir/mnist and check every file; the record of what was verified."""
    files = fetch_mnist(raw_dir / "mnist", source.mirrors, timeout_s=source.timeout_s)
    return {"dataset": "mnist", "source_md5": files}


def prepare_mnist(source: MnistSource, raw_dir: Path, out_dir: Path) -> dict:
    """Verify the raw files again (quick), then write the train and test splits; their manifest."""
    record = verify_mnist(source, raw_dir)
    parsed = {split: load_mnist_split(raw_dir / "mnist", split) for split in SPLIT_FILES}
    return save_digit_splits("mnist", record["source_md5"], parsed, out_dir)


DATASET = Dataset(
    name="mnist",
    source=MnistSource,
    verify=verify_mnist,
    prepare=prepare_mnist,
    class_labels=True,
    metrics=("information", "categorical_code", "final_losses", "generated_digits", "factors"),
)
