"""A throwaway git copy of the project for tests that run the real DVC commands, and what they share:
running a command, editing its params, committing, the environment DVC runs in, a tiny MNIST config, and
a free port for a server a test starts and the stopping of it.

Imported by the pipeline tests as `tests.pipeline.project_copy` (pytest's importlib mode resolves it
from the project root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# Commits in the copies (and DVC's experiment commits) need an author, also where git has none set.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@localhost",
}


def attempt(cmd: list[str], cwd: Path, env: dict, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run `cmd` and return what it did, for a test that expects it may fail."""
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def run(cmd: list[str], cwd: Path, env: dict, timeout: float = 1800) -> str:
    """Run `cmd`; fail the test with the end of its output unless it succeeds; return stdout + stderr."""
    result = attempt(cmd, cwd, env, timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{output[-6000:]}"
    return output


def dvc_command(*args: str) -> list[str]:
    """`dvc <args>` with this interpreter's DVC."""
    return [sys.executable, "-m", "dvc", *args]


def dvc(cwd: Path, env: dict, *args: str, timeout: float = 1800) -> str:
    """`dvc <args>` in `cwd`; its output, once it has succeeded."""
    return run(dvc_command(*args), cwd, env, timeout)


def git(cwd: Path, *args: str) -> str:
    return run(["git", *args], cwd, {**os.environ, **GIT_IDENTITY}, timeout=120)


def dvc_env(**extra: str) -> dict[str, str]:
    """The environment for DVC in a copy: this virtualenv first on PATH (the stages' `python`), no
    outside MLflow server, and no telemetry (tests make no outside calls)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true", **extra)
    return env


def copy_project(dst: Path) -> None:
    """The working tree as git sees it (tracked and new files, nothing ignored), as a fresh repo."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dst / name)
    git(dst, "init", "-q")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "copy")


def edit_params(path: Path, **sections: dict) -> None:
    """Update params.yaml sections in place: edit_params(p, train={"lr_g": 1e-4}, **{"prepare.mnist": {...}})."""
    params = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        node = params
        for part in name.split("."):
            node = node[part]
        node.update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


TINY_TRAIN = {"max_epochs": 2, "batches_per_epoch": 2}  # 4 iterations of conftest's tiny model
# the digit classifier on 2,000 images and 20 generated ones per class: seconds, not a minute
TINY_RENDER = {
    "continuous_frames": 5,
    "mi_samples": 200,
    "factor_samples": 20,
    "purity_samples": 20,
    "classifier_images": 2000,
}


def tiny_mnist_project(dst: Path, tiny_params: Callable[..., Path], mnist_dir: Path, tracking: Path) -> None:
    """A committed copy of the project in `dst` with a tiny MNIST-only config (conftest's `tiny_params`,
    TINY_TRAIN, TINY_RENDER) and its MLflow store in the folder `tracking`. The four MNIST files are
    placed by hand in data/raw/mnist, with no mirror to download from: verify checks the real files."""
    copy_project(dst)
    shutil.copytree(mnist_dir, dst / "data/raw/mnist", ignore=shutil.ignore_patterns("MD5SUMS"))
    params = tiny_params(dst)
    tracking.mkdir(parents=True, exist_ok=True)
    store = {"uri": f"sqlite:///{tracking / 'mlflow.db'}", "artifact_root": str(tracking / "mlartifacts")}
    edit_params(params, **{"prepare.mnist": {"mirrors": []}}, train=TINY_TRAIN, render=TINY_RENDER, tracking=store)
    values = yaml.safe_load(params.read_text())
    values["datasets"] = ["mnist"]
    params.write_text(yaml.safe_dump(values, sort_keys=False))
    git(dst, "commit", "-q", "-am", "tiny config")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the process group led by `process` and wait until all of it is gone (SIGKILL after
    `timeout`): the server's children outlive it by seconds."""
    os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()  # reaps the leader, else it stays in the group as a zombie
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
