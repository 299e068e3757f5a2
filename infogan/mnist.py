"""MNIST acquisition: fetch and verify the four raw IDX files, then parse them into tensors.

This is library code: it knows nothing of DVC, params files or fixed paths. The caller
passes the raw directory and the mirror list. Every file is verified against its standard
MD5 before use, whether it was downloaded or placed by hand, so a corrupt or truncated file
is never silently trained on.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from math import prod
from pathlib import Path

import torch
from tqdm import tqdm

from infogan.errors import InfoGANError

MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SPLIT_SIZES: dict[str, int] = {"train": 60000, "test": 10000}

_CHUNK = 1 << 16
# Some mirrors answer 403 to Python's default User-Agent.
_USER_AGENT = "infogan-pipeline"


def file_md5(path: Path) -> str:
    """Hex MD5 of a file, read in chunks so large files need little memory."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _md5_list() -> str:
    return "\n".join(f"  {md5}  {name}" for name, md5 in MNIST_FILES.items())


def _manual_hint(raw_dir: Path, name: str) -> str:
    return (
        f"To proceed without a mirror, place the genuine file by hand at {raw_dir / name} "
        f"(expected MD5 {MNIST_FILES[name]}). Standard MD5s of the four MNIST files:\n{_md5_list()}"
    )


def _check_mirrors(mirrors: Sequence[str]) -> None:
    """Reject anything but http(s) URLs before touching the disk or the network."""
    if isinstance(mirrors, str):  # a lone string would be iterated character by character
        raise InfoGANError(f"mirrors must be a list of URLs, got the single string {mirrors!r}")
    for mirror in mirrors:
        parts = urllib.parse.urlsplit(str(mirror))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InfoGANError(
                f"MNIST mirror {mirror!r} is not an http:// or https:// URL; "
                "only http(s) mirrors are supported. Fix the mirror list."
            )


def _file_url(mirror: str, name: str) -> str:
    return mirror.rstrip("/") + "/" + name


def _describe(err: BaseException) -> str:
    """A short, human-readable reason for a failed download."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"network error: {err.reason}"
    if isinstance(err, TimeoutError):
        return "timed out"
    return f"{type(err).__name__}: {err}"


def _download(url: str, part: Path, timeout_s: float, progress: bool) -> str:
    """Stream url into part, returning the MD5 of what was written."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest, received = hashlib.md5(), 0
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with (
            open(part, "wb") as out,
            tqdm(total=total, unit="B", unit_scale=True, desc=part.stem, disable=not progress) as bar,
        ):
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    # http.client returns a short body silently when the peer hangs up; name it plainly.
    if total is not None and received != total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")
    return digest.hexdigest()


def _quarantine_bad_files(raw_dir: Path) -> None:
    """Verify files already present; move mismatching ones aside to <name>.bad and raise."""
    problems = []
    for name, expected in MNIST_FILES.items():
        path = raw_dir / name
        if not path.is_file():
            continue
        actual = file_md5(path)
        if actual != expected:
            # Rename rather than delete: the user's file is kept, but no later run trusts it.
            os.replace(path, path.with_name(name + ".bad"))
            problems.append(
                f"{path}: expected MD5 {expected}, got {actual}; moved it to {name}.bad. "
                f"Place the genuine file at {path}."
            )
    if problems:
        raise InfoGANError(
            "MNIST file(s) already in the raw directory failed the checksum:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\nOnce the bad file is out of the way, a rerun downloads it from the mirrors; "
            f"or place the genuine file by hand. Standard MD5s:\n{_md5_list()}"
        )


def _fetch_one(raw_dir: Path, name: str, mirrors: Sequence[str], timeout_s: float, progress: bool) -> None:
    """Try each mirror in turn until a download of name matches its MD5."""
    expected = MNIST_FILES[name]
    final, part = raw_dir / name, raw_dir / (name + ".part")
    failures = []
    for mirror in mirrors:
        url = _file_url(mirror, name)
        try:
            actual = _download(url, part, timeout_s, progress)
        except (OSError, http.client.HTTPException, ValueError) as err:
            part.unlink(missing_ok=True)
            failures.append(f"{url}: {_describe(err)}")
            continue
        if actual == expected:
            os.replace(part, final)  # atomic: the final name only ever holds a verified file
            return
        part.unlink(missing_ok=True)
        failures.append(f"{url}: checksum mismatch: expected {expected}, got {actual}")
    tried = "\n".join(f"  - {f}" for f in failures) if failures else "  (no mirrors configured)"
    raise InfoGANError(
        f"Could not download MNIST file {name} from any mirror. Mirrors tried:\n{tried}\n"
        + _manual_hint(raw_dir, name)
    )


def fetch_mnist(
    raw_dir: Path, mirrors: Sequence[str], timeout_s: float = 30.0, progress: bool = True
) -> dict[str, str]:
    """Make sure the four files are in raw_dir and verified; return {name: md5}.

    Files already present are verified and used without any network access; a present file
    with a wrong MD5 is moved to <name>.bad and is an error (never silently replaced).
    Missing files are downloaded from the mirrors in order, each verified before it gets
    its final name.
    """
    _check_mirrors(mirrors)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    # Check everything already present first, so a bad hand-placed file is reported
    # before spending time on downloads.
    _quarantine_bad_files(raw_dir)
    for name in MNIST_FILES:
        if not (raw_dir / name).is_file():
            _fetch_one(raw_dir, name, mirrors, timeout_s, progress)
    return dict(MNIST_FILES)


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
