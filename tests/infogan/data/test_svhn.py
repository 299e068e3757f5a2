"""Tests for infogan.data.svhn: verified download with mirror fallback, hand-placed files, .mat reading.

No internet: small fake SVHN .mat files (written with scipy.io.savemat in the official layout)
are served from loopback HTTP servers, and fetched through the real download code with their
own MD5s in place of the official ones.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from infogan.data.download import file_md5
from infogan.data.svhn import fetch_svhn, load_svhn_split
from infogan.errors import InfoGANError
from pipeline.params import shipped_source

DEAD_MIRROR = "http://127.0.0.1:1/"  # port 1 is closed: connection refused at once
TRAIN, TEST = "train_32x32.mat", "test_32x32.mat"
SIZES = {"train": 20, "test": 7}
OFFICIAL = shipped_source("svhn")  # params.yaml: the official files' MD5s and counts
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Moved</title></head><body>Please log in</body></html>\n"


def counts(n: int):
    """The shipped SVHN source with both splits expected to hold n examples."""
    return shipped_source("svhn", train_count=n, test_count=n)


def fake_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """X uint8 (32, 32, 3, n) and y uint8 (n, 1) with labels cycling through 1..10, as SVHN stores them."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = (np.arange(n) % 10 + 1).astype(np.uint8)[:, None]
    return x, y


def write_mat(path: Path, **arrays: object) -> Path:
    scipy.io.savemat(path, arrays)
    return path


@pytest.fixture(scope="module")
def svhn_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding fake train (20 examples) and test (7 examples) .mat files."""
    directory = tmp_path_factory.mktemp("svhn-source")
    for split, name, seed in (("train", TRAIN, 0), ("test", TEST, 1)):
        x, y = fake_split(SIZES[split], seed)
        write_mat(directory / name, X=x, y=y)
    return directory


@pytest.fixture(scope="module")
def fake_files(svhn_source: Path) -> dict[str, str]:
    """The {name: md5} table of the fake files, standing in for the official ones."""
    return {name: file_md5(svhn_source / name) for name in (TRAIN, TEST)}


@pytest.fixture(scope="module")
def svhn_mirror_url(svhn_source: Path, serve_directory) -> Iterator[str]:
    with serve_directory(svhn_source) as url:
        yield url


@pytest.fixture
def wrong_mirror_url(tmp_path_factory: pytest.TempPathFactory, serve_directory) -> Iterator[str]:
    """A mirror answering 200 with an HTML page under each SVHN name, as a captive portal might."""
    directory = tmp_path_factory.mktemp("wrong-mirror")
    for name in (TRAIN, TEST):
        (directory / name).write_bytes(HTML_PAGE)
    with serve_directory(directory) as url:
        yield url


def fetch(raw_dir: Path, mirrors: list[str], files: dict[str, str]) -> dict[str, str]:
    return fetch_svhn(raw_dir, mirrors, timeout_s=5.0, progress=False, files=files)


def assert_complete(raw_dir: Path, files: dict[str, str]) -> None:
    """raw_dir holds exactly the verified files and nothing half-written."""
    assert sorted(p.name for p in raw_dir.iterdir()) == sorted(files)
    for name, md5 in files.items():
        assert file_md5(raw_dir / name) == md5


# --- fetch_svhn -----------------------------------------------------------------------------


def test_download_verify_and_load(svhn_mirror_url: str, fake_files: dict[str, str], tmp_path: Path) -> None:
    raw_dir = tmp_path / "raw" / "svhn"  # does not exist yet
    assert fetch(raw_dir, [svhn_mirror_url], fake_files) == fake_files
    assert_complete(raw_dir, fake_files)
    images, labels = load_svhn_split(raw_dir, "train", counts(SIZES["train"]))
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (20,) and labels.dtype == torch.int64
    x, y = fake_split(SIZES["train"], seed=0)
    # images[n, c, h, w] is X[h, w, c, n]: pick indices that are all different to catch a swapped axis.
    assert int(images[13, 2, 5, 30]) == int(x[5, 30, 2, 13])
    assert torch.equal(images, torch.from_numpy(x).permute(3, 2, 0, 1))
    assert int(y[9, 0]) == 10 and int(labels[9]) == 0  # SVHN's 10 is the digit 0
    assert labels[:9].tolist() == list(range(1, 10))
    test_images, test_labels = load_svhn_split(raw_dir, "test", counts(SIZES["test"]))
    assert test_images.shape == (7, 3, 32, 32) and test_labels.tolist() == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("first", ["closed port", "404 path", "wrong content"])
def test_falls_back_past_failing_mirror(
    svhn_mirror_url: str, wrong_mirror_url: str, fake_files: dict[str, str], tmp_path: Path, first: str
) -> None:
    mirror = {"closed port": DEAD_MIRROR, "404 path": svhn_mirror_url + "missing/", "wrong content": wrong_mirror_url}
    assert fetch(tmp_path, [mirror[first], svhn_mirror_url.rstrip("/")], fake_files) == fake_files
    assert_complete(tmp_path, fake_files)


def test_wrong_checksum_is_rejected_and_nothing_kept(
    wrong_mirror_url: str, fake_files: dict[str, str], tmp_path: Path
) -> None:
    with pytest.raises(InfoGANError) as info:
        fetch(tmp_path, [DEAD_MIRROR, wrong_mirror_url], fake_files)
    message = str(info.value)
    assert f"Could not download SVHN file {TRAIN}" in message
    assert DEAD_MIRROR + TRAIN in message
    served = hashlib.md5(HTML_PAGE).hexdigest()
    assert f"{wrong_mirror_url}{TRAIN}: checksum mismatch: expected {fake_files[TRAIN]}, got {served}" in message
    assert f"place the genuine file by hand at {tmp_path / TRAIN}" in message
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a .part is left


def test_hand_placed_good_files_need_no_network(svhn_source: Path, fake_files: dict[str, str], tmp_path: Path) -> None:
    for name in fake_files:
        shutil.copyfile(svhn_source / name, tmp_path / name)
    assert fetch(tmp_path, [DEAD_MIRROR], fake_files) == fake_files  # the only mirror is dead
    assert_complete(tmp_path, fake_files)


def test_hand_placed_bad_file_is_moved_aside(
    svhn_source: Path, svhn_mirror_url: str, fake_files: dict[str, str], tmp_path: Path
) -> None:
    shutil.copyfile(svhn_source / TEST, tmp_path / TEST)
    (tmp_path / TRAIN).write_bytes(HTML_PAGE)
    with pytest.raises(InfoGANError) as info:
        fetch(tmp_path, [svhn_mirror_url], fake_files)  # a good mirror is available, yet must not be used
    message = str(info.value)
    assert "SVHN file(s) already in the raw directory failed the checksum" in message
    assert f"expected MD5 {fake_files[TRAIN]}, got {hashlib.md5(HTML_PAGE).hexdigest()}" in message
    assert f"moved it to {TRAIN}.bad" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == [TEST, TRAIN + ".bad"]
    assert (tmp_path / (TRAIN + ".bad")).read_bytes() == HTML_PAGE
    # With the bad file out of the way, the next run downloads a genuine copy.
    assert fetch(tmp_path, [svhn_mirror_url], fake_files) == fake_files
    assert file_md5(tmp_path / TRAIN) == fake_files[TRAIN]


def test_shipped_params_hold_the_official_checksums(svhn_source: Path, tmp_path: Path) -> None:
    """With params.yaml's table, the torchvision MD5s are enforced: a fake file placed by hand is refused."""
    shutil.copyfile(svhn_source / TRAIN, tmp_path / TRAIN)
    with pytest.raises(InfoGANError) as info:
        fetch_svhn(tmp_path, [], OFFICIAL.files(), progress=False)
    message = str(info.value)
    assert "expected MD5 e26dedcc434d2e4c54c9b2d4a06d8373" in message
    assert "eb5a983be6a315427106f1b164d9cef3  test_32x32.mat" in message
    assert (tmp_path / (TRAIN + ".bad")).is_file()


def test_non_http_mirror_is_rejected_naming_svhn(tmp_path: Path) -> None:
    with pytest.raises(InfoGANError, match=r"SVHN mirror 'ufldl.stanford.edu/housenumbers/' is not an http"):
        fetch_svhn(tmp_path / "raw", ["ufldl.stanford.edu/housenumbers/"], OFFICIAL.files(), progress=False)
    assert not (tmp_path / "raw").exists()


# --- load_svhn_split --------------------------------------------------------------------------


def test_truncated_mat_names_the_file_and_what_to_do(svhn_source: Path, tmp_path: Path) -> None:
    data = (svhn_source / TRAIN).read_bytes()
    for cut in (100, 128, 5000, len(data) - 5):  # inside the header, just after it, in X, at the end
        (tmp_path / TRAIN).write_bytes(data[:cut])
        with pytest.raises(InfoGANError) as info:
            load_svhn_split(tmp_path, "train", counts(SIZES["train"]))
        message = str(info.value)
        assert str(tmp_path / TRAIN) in message and "truncated" in message, cut
        assert "fetch SVHN again" in message and OFFICIAL.train_md5 in message, cut


def test_html_page_in_place_of_mat(tmp_path: Path) -> None:
    (tmp_path / TEST).write_bytes(HTML_PAGE)
    with pytest.raises(InfoGANError) as info:
        load_svhn_split(tmp_path, "test", OFFICIAL)
    message = str(info.value)
    assert f"{tmp_path / TEST} is an HTML page, not a MATLAB .mat file" in message
    assert f"Delete {tmp_path / TEST} and fetch SVHN again" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InfoGANError, match="does not exist; fetch SVHN first"):
        load_svhn_split(tmp_path, "train", OFFICIAL)


def test_unknown_split_names_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(InfoGANError, match="allowed values: train, test"):
        load_svhn_split(tmp_path, "extra", OFFICIAL)


def test_shipped_counts_are_the_official_ones(svhn_source: Path) -> None:
    with pytest.raises(InfoGANError, match="SVHN train split has 20 examples, expected 73257"):
        load_svhn_split(svhn_source, "train", OFFICIAL)
    with pytest.raises(InfoGANError, match="SVHN test split has 7 examples, expected 26032"):
        load_svhn_split(svhn_source, "test", OFFICIAL)


def _bad_contents() -> list:
    x, y = fake_split(4, seed=2)
    cases = {
        "no-y": ({"X": x}, "holds no variable y"),
        "no-X": ({"y": y}, "holds no variable X"),
        "float-X": ({"X": x.astype(np.float64), "y": y}, "X holds float64 of shape (32, 32, 3, 4), expected uint8"),
        "28-rows": ({"X": x[:28], "y": y}, "X holds uint8 of shape (28, 32, 3, 4)"),
        "3d-X": ({"X": x[..., 0], "y": y}, "X holds uint8 of shape (32, 32, 3)"),
        "2-column-y": ({"X": x, "y": np.ones((4, 2), np.uint8)}, "y holds uint8 of shape (4, 2)"),
        "count-mismatch": ({"X": x, "y": y[:3]}, "holds 4 images but 3 labels"),
        "label-0": (
            {"X": x, "y": np.array([[1], [0], [3], [4]], np.uint8)},
            "holds label 0 at index 1; SVHN labels are 1..10",
        ),
        "label-11": ({"X": x, "y": np.array([[1], [2], [3], [11]], np.int32)}, "holds label 11 at index 3"),
        "label-2.5": ({"X": x, "y": np.array([[1], [2.5], [3], [4]])}, "holds label 2.5 at index 1"),
    }
    return [pytest.param(arrays, message, id=name) for name, (arrays, message) in cases.items()]


@pytest.mark.parametrize(("arrays", "message"), _bad_contents())
def test_bad_contents_are_named(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    write_mat(tmp_path / TRAIN, **arrays)
    with pytest.raises(InfoGANError, match=re.escape(message)) as info:
        load_svhn_split(tmp_path, "train", counts(4))
    assert str(tmp_path / TRAIN) in str(info.value)


def test_float_labels_holding_whole_numbers_are_accepted(tmp_path: Path) -> None:
    x, _ = fake_split(3, seed=3)
    write_mat(tmp_path / TEST, X=x, y=np.array([[10.0], [1.0], [9.0]]))
    _, labels = load_svhn_split(tmp_path, "test", counts(3))
    assert labels.tolist() == [0, 1, 9] and labels.dtype == torch.int64
