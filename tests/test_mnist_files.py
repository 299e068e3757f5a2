"""Where the tests find MNIST (tests/mnist_files.py): in a clone with no ../shared, in data/raw/mnist
as `dvc repro` leaves it; where no folder holds it, fetched once through the project's download code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infogan.data.download import file_md5
from infogan.data.mnist import MNIST_FILES
from tests.mnist_files import ENV, MnistMissing, mnist_files
from tests.pipeline.project_copy import ROOT, copy_project

DEAD_MIRROR = "http://127.0.0.1:1/"


def checkout_with_mirrors(root: Path, mirrors: list[str]) -> Path:
    """A folder with the project's params.yaml, its MNIST mirrors replaced: what mnist_files reads."""
    root.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["prepare"]["mnist"].update(mirrors=mirrors, timeout_s=5)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def test_a_clone_with_no_shared_folder_finds_the_files_dvc_repro_left(tmp_path, mnist_fixture_dir):
    clone = tmp_path / "clone"  # beside it, no shared/
    copy_project(clone)
    shutil.copytree(mnist_fixture_dir, clone / "data/raw/mnist", ignore=shutil.ignore_patterns("MD5SUMS"))
    env = {"PATH": "/usr/bin:/bin"}  # and no INFOGAN_MNIST_DIR
    found = subprocess.run(
        [sys.executable, "-c", "from tests.mnist_files import mnist_files; print(mnist_files())"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert found == f"{clone / 'data/raw/mnist'}\n"  # found, nothing fetched


def test_where_no_folder_holds_them_they_are_fetched_once_and_checked(
    tmp_path, mnist_fixture_dir, serve_directory, capsys
):
    with serve_directory(mnist_fixture_dir) as url:
        root = checkout_with_mirrors(tmp_path / "clone", [DEAD_MIRROR, url])
        assert mnist_files(root, environ={}) == root / "data/raw/mnist"
    assert "fetching it there" in capsys.readouterr().out
    assert {name: file_md5(root / "data/raw/mnist" / name) for name in MNIST_FILES} == MNIST_FILES
    assert sorted(p.name for p in (root / "data/raw/mnist").iterdir()) == sorted(MNIST_FILES)  # nothing else left
    assert mnist_files(root, environ={}) == root / "data/raw/mnist" and capsys.readouterr().out == ""  # found now


def test_offline_it_stops_with_one_line_saying_what_to_do(tmp_path):
    root = checkout_with_mirrors(tmp_path / "clone", [DEAD_MIRROR])
    with pytest.raises(MnistMissing) as missing:
        mnist_files(root, environ={})
    message = str(missing.value)
    assert "\n" not in message
    assert message.startswith(f"the tests need the four MNIST .gz files, and fetching them into {root}/data/raw/mnist")
    assert "Could not download MNIST file train-images-idx3-ubyte.gz from any mirror" in message
    assert message.endswith(
        f"run `dvc repro` once with internet access, or place them in {root}/data/raw/mnist or in a folder {ENV} names"
    )


def test_a_folder_named_by_the_variable_must_hold_all_four(tmp_path, mnist_fixture_dir):
    shutil.copy(mnist_fixture_dir / "t10k-labels-idx1-ubyte.gz", tmp_path)
    with pytest.raises(MnistMissing, match=rf"^{ENV}={tmp_path} lacks train-images-idx3-ubyte.gz, "):
        mnist_files(tmp_path, environ={ENV: str(tmp_path)})
    assert mnist_files(tmp_path, environ={ENV: str(mnist_fixture_dir)}) == mnist_fixture_dir
