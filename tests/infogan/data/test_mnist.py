"""Tests for infogan.data.mnist: verified download with mirror fallback, hand-placed files, IDX parsing.

No internet: downloads go to loopback HTTP servers serving the real MNIST files (or corrupt copies).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
import shutil
import struct
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler
from pathlib import Path

import pytest
import torch

from infogan.data.download import file_md5, gunzipped_md5
from infogan.data.mnist import MNIST_CONTENT_MD5, MNIST_FILES, SPLIT_SIZES, fetch_mnist, load_mnist_split, read_idx
from infogan.errors import InfoGANError

DEAD_MIRROR = "http://127.0.0.1:1/"  # port 1 is closed: connection refused at once
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"


def fetch(raw_dir: Path, mirrors: list[str]) -> dict[str, str]:
    return fetch_mnist(raw_dir, mirrors, timeout_s=5.0, progress=False)


def assert_complete(raw_dir: Path) -> None:
    """raw_dir holds exactly the four verified files and nothing half-written."""
    assert sorted(p.name for p in raw_dir.iterdir()) == sorted(MNIST_FILES)
    for name, md5 in MNIST_FILES.items():
        assert file_md5(raw_dir / name) == md5


def place_by_hand(source: Path, raw_dir: Path) -> None:
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        shutil.copyfile(source / name, raw_dir / name)


def write_idx(path: Path, header: bytes, payload: bytes) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + payload)
    return path


def idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


class _Quiet:
    """Keeps the loopback servers from printing a line per request into test output."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class _FilesHandler(_Quiet, SimpleHTTPRequestHandler):
    """Serves a directory, like a plain mirror."""


class _PickyHandler(_FilesHandler):
    """Like some real mirrors: answers 403 to Python's default User-Agent."""

    def do_GET(self) -> None:
        if self.headers.get("User-Agent", "").startswith("Python-urllib"):
            self.send_error(403)
        else:
            super().do_GET()


class _DroppingHandler(_Quiet, BaseHTTPRequestHandler):
    """Promises a large body, sends a little, then hangs up: a connection lost mid-download."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"x" * 1000)
        self.close_connection = True


def files(handler: type[SimpleHTTPRequestHandler], directory: Path) -> Callable[..., BaseHTTPRequestHandler]:
    """`handler` serving the files of `directory`."""
    return functools.partial(handler, directory=str(directory))


# --- fetch_mnist: downloading ---------------------------------------------------------------


def test_download_into_empty_dir(mnist_mirror_url: str, tmp_path: Path) -> None:
    raw_dir = tmp_path / "data" / "raw"  # does not exist yet
    assert fetch(raw_dir, [mnist_mirror_url]) == MNIST_FILES
    assert_complete(raw_dir)


@pytest.mark.parametrize("dead", ["closed port", "404 path"])
def test_falls_back_past_dead_mirror(mnist_mirror_url: str, tmp_path: Path, dead: str) -> None:
    first = DEAD_MIRROR if dead == "closed port" else mnist_mirror_url + "missing/"
    good = mnist_mirror_url.rstrip("/")  # a mirror without trailing slash is accepted too
    assert fetch(tmp_path, [first, good]) == MNIST_FILES
    assert_complete(tmp_path)


def test_all_mirrors_fail_lists_each_and_the_manual_fallback(mnist_mirror_url: str, tmp_path: Path) -> None:
    not_found = mnist_mirror_url + "missing"
    with pytest.raises(InfoGANError) as info:
        fetch(tmp_path, [DEAD_MIRROR, not_found])
    message = str(info.value)
    assert DEAD_MIRROR + TRAIN_IMAGES in message
    assert f"{not_found}/{TRAIN_IMAGES}: HTTP 404" in message
    assert str(tmp_path / TRAIN_IMAGES) in message
    assert MNIST_FILES[TRAIN_IMAGES] in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_no_mirrors_and_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InfoGANError, match="no mirrors") as info:
        fetch(tmp_path, [])
    assert str(tmp_path / TRAIN_IMAGES) in str(info.value)
    assert MNIST_FILES[TRAIN_IMAGES] in str(info.value)


@pytest.fixture
def corrupt_mirror_url(tmp_path_factory: pytest.TempPathFactory, loopback_server) -> Iterator[str]:
    """A loopback mirror serving files with the MNIST names but the wrong bytes."""
    directory = tmp_path_factory.mktemp("corrupt-mirror")
    for name in MNIST_FILES:
        (directory / name).write_bytes(b"not the real " + name.encode())
    with loopback_server(files(_FilesHandler, directory)) as url:
        yield url


def test_corrupt_mirror_is_skipped_for_next_good_one(
    corrupt_mirror_url: str, mnist_mirror_url: str, tmp_path: Path
) -> None:
    assert fetch(tmp_path, [corrupt_mirror_url, mnist_mirror_url]) == MNIST_FILES
    assert_complete(tmp_path)


def test_only_corrupt_mirror_reports_mismatch_and_leaves_nothing(corrupt_mirror_url: str, tmp_path: Path) -> None:
    with pytest.raises(InfoGANError) as info:
        fetch(tmp_path, [corrupt_mirror_url])
    served_md5 = hashlib.md5(b"not the real " + TRAIN_IMAGES.encode()).hexdigest()
    message = str(info.value)
    assert corrupt_mirror_url + TRAIN_IMAGES in message
    assert f"checksum mismatch: expected {MNIST_FILES[TRAIN_IMAGES]}, got {served_md5}" in message
    assert not (tmp_path / TRAIN_IMAGES).exists()
    assert not (tmp_path / (TRAIN_IMAGES + ".part")).exists()


def test_mirror_rejecting_default_user_agent_works(mnist_fixture_dir: Path, tmp_path: Path, loopback_server) -> None:
    with loopback_server(files(_PickyHandler, mnist_fixture_dir)) as url:
        assert fetch(tmp_path, [url]) == MNIST_FILES
    assert_complete(tmp_path)


def test_connection_dropped_mid_download(mnist_mirror_url: str, tmp_path: Path, loopback_server) -> None:
    with loopback_server(_DroppingHandler) as dropping:
        with pytest.raises(InfoGANError, match="connection closed after 1000 of 1000000 bytes"):
            fetch(tmp_path, [dropping])
        assert list(tmp_path.iterdir()) == []  # the partial .part was cleaned up
        assert fetch(tmp_path, [dropping, mnist_mirror_url]) == MNIST_FILES
    assert_complete(tmp_path)


# --- fetch_mnist: files placed by hand -------------------------------------------------------


def test_the_content_digests_are_the_real_files(mnist_fixture_dir: Path) -> None:
    assert {name: gunzipped_md5(mnist_fixture_dir / name) for name in MNIST_FILES} == MNIST_CONTENT_MD5


def recompress(path: Path, content: bytes | None = None) -> bytes:
    """Gunzip the file at `path` and gzip it again, with another level and time: other bytes, the same
    content (or `content`, if given); return the new bytes."""
    data = gzip.decompress(path.read_bytes()) if content is None else content
    path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    return path.read_bytes()


def test_a_hand_placed_file_gzipped_again_is_accepted_as_it_is(mnist_fixture_dir: Path, tmp_path: Path) -> None:
    place_by_hand(mnist_fixture_dir, tmp_path)
    again = recompress(tmp_path / TEST_LABELS)
    assert hashlib.md5(again).hexdigest() != MNIST_FILES[TEST_LABELS]  # the checksum alone would refuse it
    assert fetch(tmp_path, [DEAD_MIRROR]) == MNIST_FILES  # no download: the file placed is used
    assert (tmp_path / TEST_LABELS).read_bytes() == again
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(MNIST_FILES)  # nothing moved aside
    assert torch.equal(load_mnist_split(tmp_path, "test")[1], load_mnist_split(mnist_fixture_dir, "test")[1])


def test_a_mirror_serving_the_content_gzipped_again_is_used(
    mnist_fixture_dir: Path, tmp_path: Path, loopback_server
) -> None:
    mirror = tmp_path / "mirror"
    place_by_hand(mnist_fixture_dir, mirror)
    recompress(mirror / TEST_LABELS)
    with loopback_server(files(_FilesHandler, mirror)) as url:
        assert fetch(tmp_path / "raw", [url]) == MNIST_FILES
    assert (tmp_path / "raw" / TEST_LABELS).read_bytes() == (mirror / TEST_LABELS).read_bytes()


def test_a_genuine_file_the_user_gunzipped_is_gzipped_again_and_used(
    mnist_fixture_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    place_by_hand(mnist_fixture_dir, tmp_path)
    gz, plain = tmp_path / TRAIN_IMAGES, tmp_path / TRAIN_IMAGES.removesuffix(".gz")
    plain.write_bytes(gzip.decompress(gz.read_bytes()))  # as `gunzip` leaves it
    gz.unlink()
    assert fetch(tmp_path, [DEAD_MIRROR]) == MNIST_FILES  # no download: the file there is used
    assert capsys.readouterr().out == (
        f"{plain} is {TRAIN_IMAGES} uncompressed, with the genuine content "
        f"(MD5 {MNIST_CONTENT_MD5[TRAIN_IMAGES]}): gzipped it to {TRAIN_IMAGES}\n"
    )
    assert gunzipped_md5(gz) == MNIST_CONTENT_MD5[TRAIN_IMAGES] and plain.is_file()  # the user's file stays
    assert torch.equal(load_mnist_split(tmp_path, "train")[0], load_mnist_split(mnist_fixture_dir, "train")[0])
    # the next run has nothing to do
    assert fetch(tmp_path, [DEAD_MIRROR]) == MNIST_FILES and capsys.readouterr().out == ""


def test_an_uncompressed_file_with_other_content_is_named_when_no_mirror_serves_the_genuine_one(
    mnist_fixture_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    place_by_hand(mnist_fixture_dir, tmp_path)
    plain = tmp_path / TEST_LABELS.removesuffix(".gz")
    content = bytearray(gzip.decompress((tmp_path / TEST_LABELS).read_bytes()))
    content[-1] = (content[-1] + 1) % 10  # one label changed
    plain.write_bytes(bytes(content))
    (tmp_path / TEST_LABELS).unlink()
    found = (
        f"{plain} is there uncompressed, but its MD5 is {hashlib.md5(content).hexdigest()}, "
        f"not the genuine content's {MNIST_CONTENT_MD5[TEST_LABELS]}"
    )
    with pytest.raises(InfoGANError) as refused:
        fetch(tmp_path, [DEAD_MIRROR])
    assert f"Could not download MNIST file {TEST_LABELS} from any mirror" in str(refused.value)
    assert f"{found}; it was not used." in str(refused.value)
    assert capsys.readouterr().out == f"{found}: not used, so {TEST_LABELS} is downloaded\n"
    assert plain.read_bytes() == content and not (tmp_path / TEST_LABELS).exists()  # nothing lost, nothing half-made


def test_a_file_gzipped_again_with_other_content_is_refused(mnist_fixture_dir: Path, tmp_path: Path) -> None:
    place_by_hand(mnist_fixture_dir, tmp_path)
    content = bytearray(gzip.decompress((tmp_path / TEST_LABELS).read_bytes()))
    content[-1] = (content[-1] + 1) % 10  # one label changed
    recompress(tmp_path / TEST_LABELS, bytes(content))
    with pytest.raises(InfoGANError, match=f"moved it to {TEST_LABELS}.bad"):
        fetch(tmp_path, [DEAD_MIRROR])
    assert gzip.decompress((tmp_path / (TEST_LABELS + ".bad")).read_bytes()) == bytes(content)


def test_a_second_bad_file_does_not_overwrite_the_first_bad_copy(mnist_fixture_dir: Path, tmp_path: Path) -> None:
    place_by_hand(mnist_fixture_dir, tmp_path)
    for attempt, bad in enumerate([b"first bad copy", b"second bad copy", b"third bad copy"]):
        (tmp_path / TRAIN_LABELS).write_bytes(bad)
        moved = TRAIN_LABELS + ".bad" + (f".{attempt}" if attempt else "")
        with pytest.raises(InfoGANError, match=f"; moved it to {re.escape(moved)}\\. "):
            fetch(tmp_path, [DEAD_MIRROR])
    assert (tmp_path / (TRAIN_LABELS + ".bad")).read_bytes() == b"first bad copy"
    assert (tmp_path / (TRAIN_LABELS + ".bad.1")).read_bytes() == b"second bad copy"
    assert (tmp_path / (TRAIN_LABELS + ".bad.2")).read_bytes() == b"third bad copy"


def test_hand_placed_files_need_no_network(mnist_fixture_dir: Path, tmp_path: Path) -> None:
    place_by_hand(mnist_fixture_dir, tmp_path)
    # The only mirror is dead, so success proves nothing was downloaded.
    assert fetch(tmp_path, [DEAD_MIRROR]) == MNIST_FILES
    assert_complete(tmp_path)


def test_hand_placed_corrupt_file_is_moved_aside_not_replaced(
    mnist_fixture_dir: Path, mnist_mirror_url: str, tmp_path: Path
) -> None:
    place_by_hand(mnist_fixture_dir, tmp_path)
    bad_bytes = b"a truncated or wrong file"
    (tmp_path / TRAIN_LABELS).write_bytes(bad_bytes)
    with pytest.raises(InfoGANError) as info:
        fetch(tmp_path, [mnist_mirror_url])  # a good mirror is available, yet must not be used
    message = str(info.value)
    assert TRAIN_LABELS in message and TRAIN_LABELS + ".bad" in message
    assert MNIST_FILES[TRAIN_LABELS] in message
    assert hashlib.md5(bad_bytes).hexdigest() in message
    assert not (tmp_path / TRAIN_LABELS).exists()
    assert (tmp_path / (TRAIN_LABELS + ".bad")).read_bytes() == bad_bytes
    # With the bad file out of the way, the next run fetches a genuine copy.
    assert fetch(tmp_path, [mnist_mirror_url]) == MNIST_FILES
    assert file_md5(tmp_path / TRAIN_LABELS) == MNIST_FILES[TRAIN_LABELS]


@pytest.mark.parametrize("bad", ["file:///tmp/mnist/", "ftp://example.com/mnist/", "example.com/mnist/"])
def test_non_http_mirror_rejected_before_any_work(mnist_mirror_url: str, tmp_path: Path, bad: str) -> None:
    raw_dir = tmp_path / "raw"
    with pytest.raises(InfoGANError, match="http") as info:
        fetch(raw_dir, [mnist_mirror_url, bad])
    assert bad in str(info.value)
    assert not raw_dir.exists()  # rejected before creating the dir or downloading from the good mirror


# --- read_idx / load_mnist_split -------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_load_real_split(mnist_fixture_dir: Path, split: str) -> None:
    images, labels = load_mnist_split(mnist_fixture_dir, split)
    n = SPLIT_SIZES[split]
    assert images.shape == (n, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert labels.unique().tolist() == list(range(10))
    assert int(images.max()) == 255 and int(images.min()) == 0  # real pixel data, not zeros


def test_read_idx_returns_declared_shape(tmp_path: Path) -> None:
    payload = bytes(range(24))
    tensor = read_idx(write_idx(tmp_path / "x.gz", idx_header(2, 3, 4), payload))
    assert tensor.shape == (2, 3, 4) and tensor.dtype == torch.uint8
    assert tensor.flatten().tolist() == list(payload)


@pytest.mark.parametrize(
    ("raw", "gzipped"),
    [
        (idx_header(2, 28, 28) + bytes(100), True),  # truncated payload
        (idx_header(2, 2) + bytes(5), True),  # trailing bytes
        (bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 4) + bytes(16), True),  # int32 data, not uint8
        (bytes([1, 0, 0x08, 1]) + struct.pack(">I", 4) + bytes(4), True),  # nonzero magic byte
        (bytes([0, 0, 0x08, 2]) + bytes(3), True),  # truncated header
        (idx_header(4) + bytes(4), False),  # not gzip at all
    ],
    ids=["truncated", "trailing-bytes", "int32-type", "bad-magic", "short-header", "not-gzip"],
)
def test_malformed_idx_raises_naming_file(tmp_path: Path, raw: bytes, gzipped: bool) -> None:
    path = tmp_path / "broken-idx1-ubyte.gz"
    if gzipped:
        write_idx(path, raw, b"")
    else:
        path.write_bytes(raw)
    with pytest.raises(InfoGANError, match=r"broken-idx1-ubyte.gz"):
        read_idx(path)


def test_unknown_split_names_allowed_values(mnist_fixture_dir: Path) -> None:
    with pytest.raises(InfoGANError, match="train, test"):
        load_mnist_split(mnist_fixture_dir, "validation")


@pytest.mark.parametrize(
    ("n_images", "n_labels", "message"), [(5, 5, "expected 60000"), (5, 4, "5 images but 4 labels")]
)
def test_split_with_wrong_counts_raises(tmp_path: Path, n_images: int, n_labels: int, message: str) -> None:
    write_idx(tmp_path / TRAIN_IMAGES, idx_header(n_images, 28, 28), bytes(n_images * 28 * 28))
    write_idx(tmp_path / TRAIN_LABELS, idx_header(n_labels), bytes(n_labels))
    with pytest.raises(InfoGANError, match=message):
        load_mnist_split(tmp_path, "train")


def test_split_with_label_out_of_range_raises(tmp_path: Path) -> None:
    n = SPLIT_SIZES["test"]
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", idx_header(n, 28, 28), bytes(n * 28 * 28))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_header(n), bytes(n - 1) + b"\x0a")
    with pytest.raises(InfoGANError, match="label 10"):
        load_mnist_split(tmp_path, "test")
