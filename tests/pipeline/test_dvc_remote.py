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
from mlflow.tracking import MlflowClient

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


def test_render_into_an_empty_store_logs_a_run_of_its_own(pulled):  # last: it changes the clone
    """The media workflow without the training's tracking server: an empty store, as on a CI runner
    given only the DVC remote's secrets. Render draws the same files and logs them into a new run
    that names the training's."""
    origin, clone, env, _, _ = pulled
    for path in [*(clone / MEDIA).iterdir(), clone / METRICS]:
        path.unlink()
    store = clone / "elsewhere.db"  # not where the model trained
    elsewhere = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    result = attempt(dvc_command("repro", "render@mnist"), clone, elsewhere, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    training_run = json.loads((clone / "models/mnist/run.json").read_text())["run_id"]
    assert f"has no run {training_run}, which trained the model: logging into a new run" in result.stdout
    originals = {p.name: p.read_bytes() for p in (origin / MEDIA).iterdir()}
    assert {p.name: p.read_bytes() for p in (clone / MEDIA).iterdir()} == originals

    client = MlflowClient(f"sqlite:///{store}")
    [experiment] = [e for e in client.search_experiments() if e.name == "infogan-mnist"]
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["training_run_id"] == training_run
    assert run.data.tags["git_commit"] == git(clone, "rev-parse", "HEAD").strip()
    manifest = clone / "data/prepared/mnist/manifest.json"
    assert run.data.tags["dataset_manifest_sha256"] == sha256(manifest)
    trained = json.loads((clone / "models/mnist/config.json").read_text())
    assert run.data.params["train.seed"] == str(trained["train"]["seed"])
    assert run.data.params["model.noise_dim"] == str(trained["model"]["noise_dim"])
    metrics = json.loads((clone / METRICS).read_text())
    assert metrics == json.loads((origin / METRICS).read_text())
    assert run.data.metrics == pytest.approx(metrics)
    logged = {item.path for item in client.list_artifacts(run.info.run_id, "media")}
    assert logged == {f"media/{name}" for name in originals}
