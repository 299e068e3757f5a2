"""Resume and determinism of the train stage, on a tiny CPU configuration run as real subprocesses.

A training killed with SIGKILL after its first checkpoint and then rerun must continue the same
MLflow run from that iteration and end with the weights of a run that was never interrupted.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from infogan.model.load import read_checkpoint
from pipeline.stage import train_command

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 60  # tiny_params: 6 epochs of 10 batches, a checkpoint every 7 iterations


@pytest.fixture(scope="module")
def command(prepared_mnist):
    """`command(folder, params)`: the train stage as a subprocess, every output under `folder`."""
    return lambda folder, params: train_command("mnist", params, prepared_mnist, folder)


def train(command: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


def kill_after_first_checkpoint(command: list[str], folder: Path, env: dict) -> dict:
    """Start the training `command` (outputs under `folder`), SIGKILL it as soon as its first
    checkpoint exists; return that checkpoint's record."""
    checkpoint = folder / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists(), "the training ended or timed out before writing a checkpoint"
    assert not (folder / "model" / "model.ckpt").exists(), "the training finished before it was killed"
    return read_checkpoint(checkpoint)["infogan"]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(folder / "model" / "model.ckpt")["state_dict"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, command, tiny_params, stage_env):
    """Two uninterrupted trainings with one seed, and one killed after its first checkpoint then rerun."""
    tmp = tmp_path_factory.mktemp("resume")
    params = tiny_params(tmp)
    first, second = train(command(tmp / "first", params), stage_env), train(command(tmp / "second", params), stage_env)
    killed = kill_after_first_checkpoint(command(tmp / "killed", params), tmp / "killed", stage_env)
    resumed = train(command(tmp / "killed", params), stage_env)
    for result in (first, second, resumed):
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return {
        "tmp": tmp,
        "params": params,
        "killed": killed,
        "resumed": resumed.stdout,
        "client": MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}"),
    }


def test_killed_training_resumes_from_its_checkpoint_in_the_same_mlflow_run(runs):
    tmp, killed, client = runs["tmp"], runs["killed"], runs["client"]
    assert 0 < killed["iteration"] < ITERATIONS
    run_id = killed["run_id"]
    assert (
        f"resuming MLflow run {run_id} from {tmp / 'killed/checkpoints/last.ckpt'} at iteration "
        f"{killed['iteration']}" in runs["resumed"]
    )
    print(
        f"\nkilled at iteration {killed['iteration']} of {ITERATIONS}, run {run_id}; the rerun printed:\n"
        + "\n".join(line for line in runs["resumed"].splitlines() if "MLflow run" in line)
    )
    assert yaml.safe_load((tmp / "killed/model/run.json").read_text())["run_id"] == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["resumed"] == "true"
    # the step counter went on from the checkpoint to the end, in that one run
    steps = [m.step for m in client.get_metric_history(run_id, "loss/d")]
    assert min(steps) <= killed["iteration"] < max(steps) == ITERATIONS
    history = pd.read_csv(tmp / "killed/history.csv")
    assert list(history["iteration"]) == list(range(10, ITERATIONS + 1, 10))
    # no other run was started for it: the store holds the two uninterrupted runs and this one
    experiment = client.get_experiment_by_name("infogan-mnist")
    assert len(client.search_runs([experiment.experiment_id])) == 3


def test_resumed_training_ends_with_the_weights_of_an_uninterrupted_one(runs):
    tmp = runs["tmp"]
    uninterrupted, resumed = weights(tmp / "first"), weights(tmp / "killed")
    assert uninterrupted.keys() == resumed.keys()
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name], rtol=0, atol=1e-6, msg=name)
    # and the per-epoch history, evaluation included, is the same
    pd.testing.assert_frame_equal(pd.read_csv(tmp / "killed/history.csv"), pd.read_csv(tmp / "first/history.csv"))


def test_two_trainings_with_one_seed_give_identical_metrics(runs):
    tmp, client = runs["tmp"], runs["client"]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp / "first/history.csv"), pd.read_csv(tmp / "second/history.csv"), check_exact=True
    )
    metrics = [
        client.get_run(yaml.safe_load((tmp / f"{name}/model/run.json").read_text())["run_id"]).data.metrics
        for name in ("first", "second")
    ]
    deterministic = {k: v for k, v in metrics[0].items() if not k.startswith("system/")}  # memory is not
    assert "eval/categorical_accuracy_epoch" in deterministic or "eval/categorical_accuracy" in deterministic
    assert deterministic == {k: metrics[1][k] for k in deterministic}
    first, second = weights(tmp / "first"), weights(tmp / "second")
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_trainings_with_one_seed_are_runs_of_distinct_names_with_each_param_once(runs):
    """The names say what was trained and when (not MLflow's random name, drawn from the seeded RNG:
    one name for every run of a seed); params are keyed as in params.yaml only (no optim/lr_g)."""
    tmp, client = runs["tmp"], runs["client"]
    found = {}
    for name in ("first", "second", "killed"):
        run = client.get_run(yaml.safe_load((tmp / f"{name}/model/run.json").read_text())["run_id"])
        assert re.fullmatch(r"mnist-improved-seed0-\d{8}-\d{6}", run.info.run_name), run.info.run_name
        found[name] = run.info.run_name
        assert "train.lr_g" in run.data.params and not [key for key in run.data.params if "/" in key]
    assert len(set(found.values())) == 3, found  # the trainings started seconds apart
    experiment = client.get_experiment_by_name("infogan-mnist")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_finished_training_leaves_nothing_to_resume(runs):
    for name in ("first", "killed"):
        assert list((runs["tmp"] / name / "checkpoints").iterdir()) == []


def test_a_changed_configuration_starts_a_new_run_and_keeps_the_old_checkpoint(runs, command, tiny_params, stage_env):
    folder = runs["tmp"] / "changed"
    killed = kill_after_first_checkpoint(command(folder, runs["params"]), folder, stage_env)
    changed = tiny_params(runs["tmp"] / "changed-params", lr_g=0.002)
    # the same tracking store, so only the learning rate differs
    text = changed.read_text().replace(str(runs["tmp"] / "changed-params"), str(runs["tmp"]))
    changed.write_text(text)
    result = train(command(folder, changed), stage_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not resuming" in result.stdout and "train.lr_g: 0.001 -> 0.002" in result.stdout
    assert "resuming MLflow run" not in result.stdout
    new_run = yaml.safe_load((folder / "model/run.json").read_text())["run_id"]
    assert new_run != killed["run_id"]
    assert read_checkpoint(folder / "checkpoints/previous.ckpt")["infogan"]["run_id"] == killed["run_id"]


def test_an_unreadable_checkpoint_stops_the_stage_and_is_kept(runs, command, stage_env):
    folder = runs["tmp"] / "damaged"
    (folder / "checkpoints").mkdir(parents=True)
    good = (runs["tmp"] / "first/model/model.ckpt").read_bytes()
    (folder / "checkpoints/last.ckpt").write_bytes(good[: len(good) // 2])  # truncated
    result = train(command(folder, runs["params"]), stage_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a readable checkpoint (truncated or damaged" in result.stderr
    assert "cannot resume from it: move or delete it to train from the start" in result.stderr
    assert (folder / "checkpoints/last.ckpt").read_bytes() == good[: len(good) // 2]
    assert not (folder / "model").exists()
