"""Shared pytest fixtures: the real MNIST files and a loopback HTTP mirror serving them.

Tests never touch the internet; downloads are exercised against a local http.server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.stage import train_command
from tests.loopback import serve, serve_folder
from tests.mnist_files import MnistMissing, mnist_files

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def serve_directory() -> Callable[[Path], contextlib.AbstractContextManager[str]]:
    """`with serve_directory(folder) as url:` serves the files in `folder` on 127.0.0.1, quietly."""
    return serve_folder


@pytest.fixture(scope="session")
def loopback_server() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """`with loopback_server(handler) as url:` serves requests with `handler` on 127.0.0.1."""
    return serve


@pytest.fixture(scope="session")
def mnist_fixture_dir() -> Path:
    """The folder holding the four genuine MNIST .gz files: INFOGAN_MNIST_DIR, ../shared/data/mnist or
    data/raw/mnist, else fetched into data/raw/mnist once (tests/mnist_files.py)."""
    try:
        return mnist_files()
    except MnistMissing as err:
        # fail loudly: a silent skip would hide that the data tests never ran
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def mnist_mirror_url(mnist_fixture_dir: Path) -> Iterator[str]:
    """Base URL (with trailing slash) of a loopback HTTP mirror serving the real MNIST files."""
    with serve_folder(mnist_fixture_dir) as url:
        yield url


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """The tests' tensors are small: on a 2-core machine, torch's intra-op threads only contend
    (the library tests ran about 4x slower with 2 threads beside another process)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _repository_state() -> list[str]:
    """Changed, new and ignored paths of the checkout with their modification times (bytecode aside)."""
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=_PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    paths = [line[3:] for line in listed if "__pycache__" not in line and not line[3:].startswith(".venv/")]
    return [
        f"{path} {(_PROJECT_ROOT / path).stat().st_mtime_ns if (_PROJECT_ROOT / path).exists() else '-'}"
        for path in paths
    ]


@pytest.fixture
def repository_state() -> Callable[[], list[str]]:
    """Call before and after running a script: equal lists mean it wrote nothing into the checkout."""
    return _repository_state


@pytest.fixture(scope="session")
def prepared_mnist(tmp_path_factory: pytest.TempPathFactory, mnist_fixture_dir: Path) -> Path:
    """The prepare stage's output folder for the real MNIST files, placed by hand (nothing downloaded)."""
    tmp = tmp_path_factory.mktemp("prepared-mnist")
    shutil.copytree(mnist_fixture_dir, tmp / "raw" / "mnist", ignore=shutil.ignore_patterns("MD5SUMS"))
    params = yaml.safe_load((_PROJECT_ROOT / "params.yaml").read_text())
    params["prepare"]["mnist"]["mirrors"] = []
    params["prepare"]["mnist"]["neighbours"] = 0  # the tests that read this folder train without neighbours
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.prepare",
            "--dataset",
            "mnist",
            "--params",
            str(tmp / "params.yaml"),
            "--raw-dir",
            str(tmp / "raw"),
            "--out-dir",
            str(tmp / "prepared"),
        ],
        cwd=_PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    return tmp / "prepared"


TINY_MODEL = {"g_fc": [64], "g_base_channels": 16, "g_upconv": [8], "d_conv": [8, 16], "d_fc": [32], "q_hidden": 16}


@pytest.fixture(scope="session")
def tiny_params() -> Callable[..., Path]:
    """`tiny_params(folder, **train)` writes folder/params.yaml: the project's params with a small
    MNIST model, a 60-iteration training (`train` overrides any train key), a quick digit classifier
    in render, and an SQLite tracking store in `folder`; returns its path. The train stage runs it in
    seconds on one CPU thread."""

    def write(folder: Path, **train: object) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        params = yaml.safe_load((_PROJECT_ROOT / "params.yaml").read_text())
        params["model"]["mnist"].update(TINY_MODEL)
        tiny = dict(batch_size=16, batches_per_epoch=10, max_epochs=6, sample_every_n_epochs=3, log_every_n_steps=5)
        params["train"].update({**tiny, "checkpoint_every_n_steps": 7, **train})
        # the neighbour table of the 60,000 MNIST images takes a minute or more of CPU: the trainings here
        # test other things. test_end_to_end's repro and tests/infogan/data/test_neighbours.py train with it
        params["improved"].update(neighbours=0)
        params["prepare"]["mnist"].update(neighbours=0)  # nor does prepare search (test_end_to_end's repro does)
        # render's digit classifier on 2,000 images, read on 20 generated ones per class: seconds
        params["render"].update(classifier_images=2000, purity_samples=20)
        params["tracking"].update(uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_root=str(folder / "mlartifacts"))
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return folder / "params.yaml"

    return write


@pytest.fixture(scope="session")
def train_args() -> Callable[[Path, Path, Path], list[str]]:
    """`train_args(folder, params, data)`: the arguments of `python -m pipeline.train` for an MNIST
    training on the prepared `data`, with every output (model, history, checkpoints) under `folder`."""

    def args(folder: Path, params: Path, data: Path) -> list[str]:
        return train_command("mnist", params, data, folder)[3:]  # after `python -m pipeline.train`

    return args


@pytest.fixture(scope="session")
def stage_env() -> dict[str, str]:
    """The environment for a stage run as a subprocess: no outside MLflow server or telemetry, and
    one torch thread (a run is reproducible for a seed and a thread count)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", OMP_NUM_THREADS="1")
    return env
