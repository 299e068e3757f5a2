"""SVHN (cropped digits) acquisition: fetch and verify the two .mat files, then read them into tensors.

This is library code: it knows nothing of DVC, params files or fixed paths. The caller passes
the raw directory and the mirror list (the official one is http://ufldl.stanford.edu/housenumbers/).
Every file is verified against its standard MD5 before use, whether it was downloaded or placed
by hand (see infogan.data.download). The loader then checks what the file holds, so a truncated file
or a saved HTML page is reported by name instead of failing deep inside scipy.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import scipy.io
import torch
from scipy.io.matlab import MatReadError

from infogan.config import Count, PositiveFloat, PositiveInt, Section, Text
from infogan.data.dataset import Dataset
from infogan.data.download import fetch_verified, looks_like_html
from infogan.data.images import save_digit_splits
from infogan.errors import InfoGANError

SPLIT_FILES: dict[str, str] = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


class SvhnSource(Section):
    """Where SVHN comes from and what a genuine copy holds (params section `prepare.svhn`).

    params.yaml holds the official files' checksums and counts; tests set a small fake copy's.
    """

    mirrors: tuple[Text, ...]  # tried in order until one serves a file with the right MD5
    timeout_s: PositiveFloat
    train_md5: Text
    test_md5: Text
    train_count: PositiveInt
    test_count: PositiveInt
    neighbours: Count  # each training image's nearest training images prepare stores (neighbours.pt); 0: none

    def files(self) -> dict[str, str]:
        return {SPLIT_FILES["train"]: self.train_md5, SPLIT_FILES["test"]: self.test_md5}

    def count(self, split: str) -> int:
        return self.train_count if split == "train" else self.test_count


# What scipy's .mat reader raises on a truncated or foreign file varies with where the bytes stop.
_UNREADABLE = (
    MatReadError,
    OSError,
    EOFError,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    NotImplementedError,
    zlib.error,
    struct.error,
)


def fetch_svhn(
    raw_dir: Path,
    mirrors: Sequence[str],
    files: Mapping[str, str],
    timeout_s: float = 30.0,
    progress: bool = True,
) -> dict[str, str]:
    """Make sure the SVHN .mat files are in raw_dir and verified; return {name: md5}.

    Files already present are verified and used without any network access; a present file
    with a wrong MD5 is moved to <name>.bad (.bad.1, ... if taken) and is an error. Missing files
    are downloaded from the mirrors in order (each at `<mirror>/<name>`). `files` ({name: md5}) is
    `SvhnSource.files()`: the official files' from params.yaml, or a fake copy's in the tests.
    """
    return fetch_verified(raw_dir, files, mirrors, "SVHN", timeout_s=timeout_s, progress=progress)


def _redo_hint(path: Path, md5: str) -> str:
    return f"Delete {path} and fetch SVHN again (the genuine {path.name} has MD5 {md5})."


def _read_mat(path: Path, md5: str) -> tuple[np.ndarray, np.ndarray]:
    """The X and y arrays of an SVHN .mat file, or an InfoGANError naming the file."""
    if not path.is_file():
        raise InfoGANError(f"SVHN file {path} does not exist; fetch SVHN first (or place the file there by hand).")
    with open(path, "rb") as f:
        head = f.read(1024)
    if looks_like_html(head):
        raise InfoGANError(
            f"{path} is an HTML page, not a MATLAB .mat file: a mirror or a browser saved a web page "
            f"(an error or login page) under the file's name. {_redo_hint(path, md5)}"
        )
    try:
        data = scipy.io.loadmat(path, variable_names=["X", "y"])
    except _UNREADABLE as err:
        raise InfoGANError(
            f"Cannot read {path} as a MATLAB .mat file ({type(err).__name__}: {err}); it is truncated or "
            f"not an SVHN file. {_redo_hint(path, md5)}"
        ) from err
    missing = [key for key in ("X", "y") if key not in data]
    if missing:
        # A file cut right after its 128-byte header reads as a .mat holding no variables.
        raise InfoGANError(
            f"{path} holds no variable {' or '.join(missing)}; an SVHN .mat file holds images X and labels y. "
            f"It is truncated or a different file. {_redo_hint(path, md5)}"
        )
    return data["X"], data["y"]


def load_svhn_split(raw_dir: Path, split: str, source: SvhnSource) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (images uint8 (N, 3, 32, 32), labels int64 (N,) in 0..9) for split 'train' or 'test'.

    SVHN labels the digit 0 as 10; it is mapped to 0 here so labels match the digit, as in MNIST.
    `source` says how many examples the split must hold, and the file's MD5 for the error messages.
    """
    if split not in SPLIT_FILES:
        raise InfoGANError(f"Unknown SVHN split {split!r}; allowed values: {', '.join(SPLIT_FILES)}")
    path = Path(raw_dir) / SPLIT_FILES[split]
    n_expected, md5 = source.count(split), source.files()[path.name]
    x, y = _read_mat(path, md5)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise InfoGANError(
            f"{path}: X holds {x.dtype} of shape {x.shape}, expected uint8 of shape (32, 32, 3, N). "
            f"{_redo_hint(path, md5)}"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # MATLAB stores the labels as a column, (N, 1)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise InfoGANError(f"{path}: y holds {y.dtype} of shape {y.shape}, expected numbers of shape (N, 1).")
    if x.shape[3] != y.shape[0]:
        raise InfoGANError(f"{path} holds {x.shape[3]} images but {y.shape[0]} labels. {_redo_hint(path, md5)}")
    if x.shape[3] != n_expected:
        raise InfoGANError(
            f"SVHN {split} split has {x.shape[3]} examples, expected {n_expected} ({path}). {_redo_hint(path, md5)}"
        )
    # Every label must be a whole number in 1..10; the comparisons are False for NaN too.
    bad = ~((y >= 1) & (y <= 10) & (y == np.round(y)))
    if bad.any():
        raise InfoGANError(
            f"{path} holds label {y[bad][0].item()} at index {int(np.flatnonzero(bad)[0])}; "
            "SVHN labels are 1..10 (10 for the digit 0)."
        )
    # (H, W, C, N) -> (N, C, H, W): images[n, c, h, w] == X[h, w, c, n].
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
    labels = torch.from_numpy(y.astype(np.int64) % 10)  # 10 -> 0, 1..9 unchanged
    return images, labels


def verify_svhn(source: SvhnSource, raw_dir: Path) -> dict:
    """Download what is missing from raw_dir/svhn and check every file; the record of what was verified."""
    files = fetch_svhn(raw_dir / "svhn", source.mirrors, timeout_s=source.timeout_s, files=source.files())
    return {"dataset": "svhn", "source_md5": files}


def prepare_svhn(source: SvhnSource, raw_dir: Path, out_dir: Path) -> dict:
    """Verify the raw files again (quick), then write the train and test splits; their manifest."""
    record = verify_svhn(source, raw_dir)
    parsed = {split: load_svhn_split(raw_dir / "svhn", split, source) for split in SPLIT_FILES}
    return save_digit_splits("svhn", record["source_md5"], parsed, out_dir)


DATASET = Dataset(
    name="svhn",
    source=SvhnSource,
    verify=verify_svhn,
    prepare=prepare_svhn,
    class_labels=True,
    metrics=("information", "categorical_code", "final_losses", "generated_digits"),
)
