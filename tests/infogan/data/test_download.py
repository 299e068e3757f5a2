"""Tests for infogan.data.download: the dataset-independent parts of a verified fetch.

Mirror fallback, checksum rejection and quarantine are exercised through each dataset's
fetch function (tests/infogan/data/test_mnist.py, test_svhn.py); these cover the rest. No internet.
"""

from __future__ import annotations

import functools
import hashlib
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from infogan.data.download import check_mirrors, fetch_verified, file_md5
from infogan.errors import InfoGANError


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_file_md5_matches_hashlib_across_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000  # 256 kB: several 64 kB chunks
    (tmp_path / "f").write_bytes(data)
    assert file_md5(tmp_path / "f") == hashlib.md5(data).hexdigest()


def test_fetches_any_table_and_names_the_dataset(tmp_path: Path, loopback_server) -> None:
    source, raw_dir = tmp_path / "source", tmp_path / "raw"
    source.mkdir()
    (source / "a.bin").write_bytes(b"first file")
    files = {"a.bin": hashlib.md5(b"first file").hexdigest(), "b.bin": hashlib.md5(b"absent").hexdigest()}
    with (
        loopback_server(functools.partial(_QuietFiles, directory=str(source))) as url,
        pytest.raises(InfoGANError) as info,
    ):
        fetch_verified(raw_dir, files, [url], "Toy set", timeout_s=5.0, progress=False)
    message = str(info.value)
    assert "Could not download Toy set file b.bin from any mirror" in message
    assert f"{url}b.bin: HTTP 404" in message
    assert f"Standard MD5s of the Toy set files:\n  {files['a.bin']}  a.bin\n  {files['b.bin']}  b.bin" in message
    assert sorted(p.name for p in raw_dir.iterdir()) == ["a.bin"]  # the verified file is kept


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"../escape.bin": "0" * 32}, "'../escape.bin' must be a bare file name"),
        ({"sub/dir.bin": "0" * 32}, "'sub/dir.bin' must be a bare file name"),
        ({"": "0" * 32}, "'' must be a bare file name"),
        ({"a.bin": "ABC"}, "a.bin: 'ABC' is not an MD5"),
        ({"a.bin": "F" * 32}, "is not an MD5 (32 lower-case hex digits)"),
    ],
    ids=["parent-dir", "sub-dir", "empty", "short-md5", "upper-case-md5"],
)
def test_bad_file_table_is_rejected_before_any_work(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(InfoGANError) as info:
        fetch_verified(tmp_path / "raw", files, [], "Toy set", progress=False)
    assert message in str(info.value) and "Toy set" in str(info.value)
    assert not (tmp_path / "raw").exists()


def test_single_string_mirror_is_rejected() -> None:
    with pytest.raises(InfoGANError, match="Toy set mirrors must be a list of URLs, got the single string"):
        check_mirrors("http://example.com/", "Toy set")
