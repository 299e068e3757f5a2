"""A DVC remote on a local folder: `dvc repro` and `dvc push` in a tiny-config copy of the project, then
a fresh `git clone` of it, `dvc pull`, and `dvc repro render@mnist` with the rendered files deleted:
what `.github/workflows/media.yml` does. Train must not rerun, and the files come back byte for byte.

Both repositories log to one MLflow store outside them (the copy's params.yaml names it by path), as a
team's clones share a tracking server: render logs into the run that trained the model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.pipeline.project_copy import GIT_IDENTITY, attempt, dvc, dvc_command, dvc_env, git, tiny_mnist_project

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

MEDIA = "media/mnist"
METRICS = "reports/mnist/metrics.json"
MODEL = "models/mnist/model.ckpt"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pulled(tmp_path_factory, tiny_params, mnist_fixture_dir):
    """The origin after `dvc repro` and `dvc push`, and a fresh clone after `dvc pull`, the deletion of
    what render writes into git (the GIFs and PNG sheets in media/mnist, metrics.json) and
    `dvc repro render@mnist`. Returns (origin, clone, env, (the model's hash, its mtime) after the
    pull, the repro's output)."""
    root = tmp_path_factory.mktemp("remote")
    origin, clone = root / "origin", root / "clone"
    origin.mkdir()
    tiny_mnist_project(origin, tiny_params, mnist_fixture_dir, tracking=root / "tracking")
    env = dvc_env(OMP_NUM_THREADS="1", **GIT_IDENTITY)
    # the default remote goes into .dvc/config, which git carries to every clone
    dvc(origin, env, "remote", "add", "-d", "storage", str(root / "storage"))
    dvc(origin, env, "repro")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "trained")
    assert "files pushed" in dvc(origin, env, "push")

    git(root, "clone", "-q", str(origin), str(clone))
    # The raw MNIST files are in neither git nor DVC's cache: verify, which runs on every repro, checks
    # them where the user keeps them. Placed by hand, as README "MNIST" tells a user without internet.
    shutil.copytree(mnist_fixture_dir, clone / "data/raw/mnist", ignore=shutil.ignore_patterns("MD5SUMS"))
    # the workflow's commands: its remote in the clone's git-ignored .dvc/config.local, then the model
    # and the prepared test split render scores it on, and a check that train is up to date
    dvc(clone, env, "remote", "add", "--local", "--default", "--force", "ci", str(root / "storage"))
    dvc(clone, env, "pull", "prepare@mnist", "train@mnist")
    assert "up to date" in dvc(clone, env, "status", "train@mnist")
    model = clone / MODEL
    before = (sha256(model), model.stat().st_mtime_ns)
    for path in [*(clone / MEDIA).iterdir(), clone / METRICS]:
        path.unlink()
    output = dvc(clone, env, "repro", "render@mnist")
    return origin, clone, env, before, output


def test_pull_then_render_does_not_retrain(pulled):
    _, clone, env, before, output = pulled
    assert "Stage 'train@mnist' didn't change, skipping" in output
    assert "Stage 'prepare@mnist' didn't change, skipping" in output
    assert "Running stage 'train@mnist'" not in output and "Running stage 'render@mnist'" in output
    model = clone / MODEL
    assert (sha256(model), model.stat().st_mtime_ns) == before
    status = dvc(clone, env, "status")
    assert "changed" not in status.replace("always changed", ""), status  # only check_params and verify, always run


def test_render_after_pull_gives_back_the_same_files(pulled):
    origin, clone, _, _, _ = pulled
    originals = {p.name: p.read_bytes() for p in (origin / MEDIA).iterdir()}
    assert any(name.endswith(".gif") for name in originals)
    assert {p.name: p.read_bytes() for p in (clone / MEDIA).iterdir()} == originals
    assert json.loads((clone / METRICS).read_text()) == json.loads((origin / METRICS).read_text())
    assert git(clone, "status", "--porcelain") == ""  # byte for byte what the origin committed


def test_render_without_the_training_store_stops_before_any_work(pulled):  # last: it changes the clone
    _, clone, env, _, _ = pulled
    for path in (clone / MEDIA).iterdir():
        path.unlink()
    elsewhere = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{clone / 'other.db'}"}  # not where the model trained
    result = attempt(dvc_command("repro", "render@mnist"), clone, elsewhere, timeout=600)
    assert result.returncode != 0
    run_id = json.loads((clone / "models/mnist/run.json").read_text())["run_id"]
    assert f"error: the model was trained in MLflow run {run_id}, which sqlite:///" in result.stdout + result.stderr
    assert not list((clone / MEDIA).glob("*"))  # DVC cleared the folder; render stopped before drawing
