"""Faults during training: a non-finite loss, a tracking server that is down at the start or goes
away mid-run, two processes creating one SQLite store at once, a full disk and a folder that cannot
be written; and what the tracking module records besides: run names, the experiment's kind, each
param once."""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from mlflow.tracking import MlflowClient

from infogan.config import TrackingConfig
from infogan.model.load import read_checkpoint
from infogan.training.module import InfoGANTraining
from pipeline import render, tracking, train
from pipeline.stage import entry_point, render_command, train_command
from pipeline.training_run import TolerantMLFlowLogger
from tests.pipeline.project_copy import attempt

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

ROOT = Path(__file__).resolve().parents[2]
NAN_AT = 9  # the iteration whose discriminator loss is made NaN; checkpoints fall every 7


@pytest.fixture
def run_train(train_args, prepared_mnist, monkeypatch):
    """`run_train(folder, params)`: the train stage in this process, every output under `folder`.
    MLflow's `set_tracking_uri` (which Lightning's logger calls) exports MLFLOW_TRACKING_URI; it is
    set here so that it is undone after the test."""

    def run(folder: Path, params: Path) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", yaml.safe_load(params.read_text())["tracking"]["uri"])
        monkeypatch.setattr(sys, "argv", ["pipeline.train", *train_args(folder, params, prepared_mnist)])
        train.main()

    return run


def poison_discriminator(monkeypatch, at: int, weights: bool = False) -> None:
    """Make the discriminator's adversarial loss NaN at iteration `at`, as a diverging run would;
    with `weights`, its gradients too, so that the step makes D's weights NaN."""
    original = InfoGANTraining.discriminator_step

    def poisoned(self, real, fake, latent, *args, **kwargs):
        losses = original(self, real, fake, latent, *args, **kwargs)
        if self.iteration == at:
            nan = torch.tensor(float("nan"))
            losses["loss/d"] = losses["loss/d"] + nan
            losses["total"] = losses["total"] * nan if weights else losses["total"] + nan
        return losses

    monkeypatch.setattr(InfoGANTraining, "discriminator_step", poisoned)


@pytest.fixture
def nan_at_iteration(monkeypatch):
    """Make the discriminator's adversarial loss NaN at iteration NAN_AT."""
    poison_discriminator(monkeypatch, NAN_AT)


def run_of(folder: Path) -> tuple[MlflowClient, list]:
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("infogan-mnist")
    return client, client.search_runs([experiment.experiment_id])


def test_a_nan_loss_stops_the_run_naming_the_iteration_and_keeps_the_last_good_checkpoint(
    tmp_path, tiny_params, nan_at_iteration, run_train, capsys
):
    params = tiny_params(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        run_train(tmp_path, params)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    # NaN was added to the losses, a constant: their gradients, and so the weights, stayed finite
    assert f"error: loss/d became NaN or infinite at iteration {NAN_AT}; every parameter is still finite." in err
    assert f"the last checkpoint, written at iteration 7, is kept in {tmp_path / 'checkpoints/last.ckpt'}." in err
    assert "train.on_nonfinite: skip" in err
    kept = read_checkpoint(tmp_path / "checkpoints/last.ckpt")
    assert kept["infogan"]["iteration"] == 7  # the last save before the NaN, not one after it
    assert all(torch.isfinite(w).all() for w in kept["state_dict"].values() if w.is_floating_point())
    assert not (tmp_path / "model").exists()
    _, runs = run_of(tmp_path)
    assert [run.info.status for run in runs] == ["FAILED"]


def test_a_nan_loss_before_the_first_checkpoint_says_none_is_kept(
    tmp_path, tiny_params, monkeypatch, run_train, capsys
):
    poison_discriminator(monkeypatch, 3, weights=True)  # checkpoints fall every 7 iterations
    params = tiny_params(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        run_train(tmp_path, params)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    # D's step on the NaN gradient made D's weights NaN; G's loss through D, and then G's weights, followed
    assert "error: loss/d, loss/g became NaN or infinite at iteration 3; non-finite parameters now: " in err
    named = err.split("non-finite parameters now: ")[1].split(". The run stopped")[0]
    assert re.fullmatch(r"generator\.[\w.]+, (\w+\.[\w.]+, ){2}\w+\.[\w.]+ and \d+ more", named), named
    assert "The run stopped; no checkpoint was written before it (train.checkpoint_every_n_steps is 7)." in err
    assert "is kept" not in err
    assert not (tmp_path / "checkpoints/last.ckpt").exists()


def test_with_skip_a_nan_step_is_skipped_and_training_finishes(
    tmp_path, tiny_params, nan_at_iteration, run_train, capsys
):
    params = tiny_params(tmp_path, on_nonfinite="skip")
    run_train(tmp_path, params)
    assert "skipped 1 optimizer steps whose loss was NaN or infinite" in capsys.readouterr().out
    weights = read_checkpoint(tmp_path / "model/model.ckpt")["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())
    client, runs = run_of(tmp_path)
    assert runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["train/skipped_steps"] == 1
    assert all(torch.isfinite(torch.tensor(m.value)) for m in client.get_metric_history(runs[0].info.run_id, "loss/d"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_tracking_server_stops_the_stage_at_once(
    tmp_path, prepared_mnist, tiny_params, train_args, stage_env
):
    params = tiny_params(tmp_path)
    uri = f"http://127.0.0.1:{closed_port()}"
    start = time.monotonic()
    elsewhere = {**stage_env, "MLFLOW_TRACKING_URI": uri}
    result = attempt(train_command("mnist", params, prepared_mnist, tmp_path), ROOT, elsewhere, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: the MLflow tracking server {uri} cannot be reached" in result.stderr
    assert "unset MLFLOW_TRACKING_URI and set tracking.uri: sqlite:///mlflow.db" in result.stderr
    assert time.monotonic() - start < 60  # not MLflow's minutes of retries
    assert not (tmp_path / "model").exists() and not (tmp_path / "checkpoints").exists()  # nothing trained


def test_a_server_lost_mid_run_does_not_stop_training(tmp_path, tiny_params, run_train, monkeypatch, capsys):
    """Once training has started, every MLflow call fails (as when the server goes away): training
    goes on, checkpoints are still written, the outputs are complete and the failures are reported."""
    params = tiny_params(tmp_path)
    saves = []
    real_save = train.ResumableCheckpoint.save
    monkeypatch.setattr(
        train.ResumableCheckpoint, "save", lambda self, trainer: (saves.append(1), real_save(self, trainer))
    )
    real_fit = train.pl.Trainer.fit

    def fit_with_server_gone(self, *args, **kwargs):
        def refuse(*_args, **_kwargs):
            raise ConnectionError("server went away")

        for name in ("log_batch", "log_image", "log_artifact", "set_terminated", "set_tag", "get_run"):
            monkeypatch.setattr(MlflowClient, name, refuse)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(train.pl.Trainer, "fit", fit_with_server_gone)
    run_train(tmp_path, params)
    captured = capsys.readouterr()
    assert "trained mnist" in captured.out
    assert "warning: training finished and its outputs are written, but" in captured.err
    assert "ConnectionError: server went away" in captured.err
    assert len(saves) == 8  # iterations 7, 14, ..., 56
    for name in ("model/model.ckpt", "model/run.json", "model/config.json", "history.csv"):
        assert (tmp_path / name).is_file()


def test_tolerant_logger_records_a_failed_call_instead_of_raising(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    logger = TolerantMLFlowLogger(
        experiment_name="x", tracking_uri=f"http://127.0.0.1:{closed_port()}", run_id="0" * 32
    )
    logger._initialized = True  # as after the run was opened, before the server went away
    logger._experiment_id = "1"
    logger.log_metrics({"loss/d": 1.0}, step=3)
    assert len(logger.failures) == 1 and logger.failures[0].startswith("metrics at step 3: ")


def create_run_in(uri: str) -> str:
    params = TrackingConfig(uri=uri, artifact_root=str(Path(uri[len("sqlite:///") :]).parent / "art"))
    return tracking.start_run(params, "mnist", {"train": {"seed": 0}}, {}, "mnist-paper-seed0")


def open_store_in(uri: str) -> int:
    return len(tracking.client_for(uri).search_experiments())


def report_to(queue, work, uri: str) -> None:
    try:
        queue.put(work(uri))
    except Exception as err:  # reported to the test, which fails on it
        queue.put(f"failed: {err!r}")


def at_once_in_processes(work, uri: str, n: int) -> list:
    """work(uri) in n new processes started together, and what each returned (or how it failed)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=report_to, args=(queue, work, uri)) for _ in range(n)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    return results


def test_clients_made_at_once_in_processes_on_a_new_sqlite_store_all_open_it(tmp_path):
    """As two sweeps started together do, before either has a run."""
    results = at_once_in_processes(open_store_in, f"sqlite:///{tmp_path / 'mlflow.db'}", 3)
    assert results == [1, 1, 1]  # MLflow's Default experiment, in one store built once


def test_two_processes_can_create_one_new_sqlite_store_at_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = at_once_in_processes(create_run_in, uri, 2)
    assert not any(str(r).startswith("failed") for r in results), results
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("infogan-mnist")
    assert sorted(r.info.run_id for r in client.search_runs([experiment.experiment_id])) == sorted(results)


def local_store(folder: Path) -> TrackingConfig:
    """The tracking section of params for an SQLite store in `folder`."""
    return TrackingConfig(uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_root=str(folder / "mlartifacts"))


def test_a_run_name_says_what_was_trained_and_when_in_utc():
    started = datetime(2025, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert tracking.run_name("mnist", "improved", 3, now=started) == "mnist-improved-seed3-20250102-030405"
    assert tracking.run_name("svhn", "paper", 0).startswith("svhn-paper-seed0-20")


def test_start_run_names_the_run_without_drawing_from_the_seeded_rng(tmp_path):
    """MLflow would draw a random name from `random`, which the train stage has just seeded: every run
    of a seed had one name, and the draw moved the RNG that training goes on with."""
    params = local_store(tmp_path)
    random.seed(0)
    seeded = random.getstate()
    run_ids = [
        tracking.start_run(params, "mnist", {"train": {"seed": 0}}, {}, f"mnist-paper-seed0-20250102-03040{second}")
        for second in (5, 6)
    ]
    assert random.getstate() == seeded
    client = MlflowClient(params.uri)
    runs = [client.get_run(run_id) for run_id in run_ids]
    assert [run.info.run_name for run in runs] == [
        "mnist-paper-seed0-20250102-030405",
        "mnist-paper-seed0-20250102-030406",
    ]
    assert [run.data.tags["mlflow.runName"] for run in runs] == [run.info.run_name for run in runs]


def test_the_experiment_is_marked_as_model_training_unless_its_kind_was_set(tmp_path):
    """MLflow 3's UI records an experiment's type in `mlflow.experimentKind`; GenAI is assumed without it."""
    params = local_store(tmp_path)
    client = MlflowClient(params.uri)
    tracking.start_run(params, "mnist", {"train": {"seed": 0}}, {}, "new")
    assert client.get_experiment_by_name("infogan-mnist").tags["mlflow.experimentKind"] == "custom_model_development"

    older = client.create_experiment("infogan-svhn")  # as made before the pipeline set the tag
    tracking.start_run(params, "svhn", {"train": {"seed": 0}}, {}, "older")
    assert client.get_experiment(older).tags["mlflow.experimentKind"] == "custom_model_development"

    client.set_experiment_tag(older, "mlflow.experimentKind", "genai_development")  # the user's choice stays
    tracking.start_run(params, "svhn", {"train": {"seed": 1}}, {}, "chosen")
    assert client.get_experiment(older).tags["mlflow.experimentKind"] == "genai_development"


def test_the_logger_logs_no_param_a_second_time(tmp_path, monkeypatch):
    """Lightning hands the logger the module's hyperparameters (optim/lr_g, ...); start_run has
    logged each already, as train.lr_g, and the UI would list both."""
    params = local_store(tmp_path)
    uri = params.uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the logger's set_tracking_uri exports it; undone after
    run_id = tracking.start_run(params, "mnist", {"train": {"lr_g": 0.001}, "model": {"noise_dim": 62}}, {}, "x")
    logger = TolerantMLFlowLogger(experiment_name="infogan-mnist", tracking_uri=uri, run_id=run_id)
    logger.log_hyperparams({"optim": {"lr_g": 0.001}, "model": {"noise_dim": 62}, "improved": None})
    assert MlflowClient(uri).get_run(run_id).data.params == {"train.lr_g": "0.001", "model.noise_dim": "62"}
    assert logger.failures == []


def test_a_training_log_read_through_a_pipe_holds_no_dependency_tips_or_warnings(
    tmp_path, prepared_mnist, tiny_params, stage_env
):
    params = tiny_params(tmp_path)
    result = attempt(train_command("mnist", params, prepared_mnist, tmp_path), ROOT, stage_env, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "trained mnist" in log
    for noise in ("litlogger", "Tip:", "Warning", "LeafSpec", "Traceback"):  # UserWarning, FutureWarning, ...
        assert noise not in log, noise
    # no live bar into the pipe: one progress line per epoch instead (tiny_params: 6 epochs of 10 iterations)
    progress = re.findall(
        r"^epoch (\d)/6, iteration (\d+)/60, \d+ images/s, elapsed \d+:\d\d, left \d+:\d\d, "
        r"loss/d [-\d.e]+, loss/g [-\d.e]+, .*eval/categorical_accuracy [\d.e-]+",
        result.stdout,
        re.M,
    )
    assert [(int(e), int(i)) for e, i in progress] == [(e, 10 * e) for e in range(1, 7)]
    assert "Epoch 0/" not in log and "it/s" not in log  # Lightning's bar stays off


def test_a_full_disk_while_saving_a_checkpoint_is_one_error_line_and_leaves_no_partial_file(
    tmp_path, tiny_params, run_train, monkeypatch, capsys
):
    def full_disk(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"\0" * 1_000_000)  # what fitted before the disk was full
        raise OSError(errno.ENOSPC, "No space left on device", str(filepath))

    monkeypatch.setattr(pl.Trainer, "save_checkpoint", full_disk)
    params = tiny_params(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        run_train(tmp_path, params)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    folder = tmp_path / "checkpoints"
    assert "Traceback" not in err and err.count("error: ") == 1
    assert err.splitlines(keepends=True)[-1] == (
        f"error: no space left to write {folder / 'last.ckpt'} (No space left on device); free space on the disk "
        f"that holds {folder} (df -h {folder}) and run again\n"
    )
    assert [path for path in tmp_path.rglob("*") if ".partial" in path.name] == []
    _, runs = run_of(tmp_path)
    assert [run.info.status for run in runs] == ["FAILED"]


def test_a_media_folder_that_cannot_be_written_is_one_error_line_and_its_files_stay(
    tmp_path, tiny_params, run_train, prepared_mnist, monkeypatch, capsys
):
    params = tiny_params(tmp_path, max_epochs=1)
    run_train(tmp_path, params)
    media = tmp_path / "media"
    media.mkdir()
    (media / "categorical_0.gif").write_bytes(b"the last good one")
    rename = os.replace

    def read_only_media(source, destination):  # as a read-only folder does, even for root
        if Path(destination).parent == media:
            raise PermissionError(errno.EACCES, "Permission denied", str(source))
        return rename(source, destination)

    monkeypatch.setattr(os, "replace", read_only_media)
    args = ["--dataset", "mnist", "--params", str(params), "--model", str(tmp_path / "model")]
    args += ["--data", str(prepared_mnist), "--media", str(media), "--metrics", str(tmp_path / "metrics.json")]
    monkeypatch.setattr(sys, "argv", ["pipeline.render", *args, "--history", str(tmp_path / "history.csv")])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        render.main()
    assert stopped.value.code == 2
    gif = media / "categorical_0.gif"
    err = capsys.readouterr().err  # after render's progress bars, the one error line
    assert "Traceback" not in err and err.count("error: ") == 1
    expected = f"error: cannot write {gif} (Permission denied); make {media} writable and run again\n"
    assert err.splitlines(keepends=True)[-1] == expected
    assert gif.read_bytes() == b"the last good one" and [p.name for p in media.iterdir()] == ["categorical_0.gif"]
    assert not (tmp_path / "metrics.json").exists()


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """Make `folder` refuse new files: read-only for a user, immutable (chattr +i) for root, whom modes
    do not stop."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield
        folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode != 0:
        pytest.skip("running as root on a filesystem without the immutable attribute: nothing can refuse root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_unwritable_media_folder_ends_on_its_error_line_with_no_writer_left_to_complain(
    tmp_path, tiny_params, run_train, prepared_mnist, stage_env
):
    params = tiny_params(tmp_path, max_epochs=1)
    run_train(tmp_path, params)
    media = tmp_path / "media"
    media.mkdir()
    (media / "categorical_0.gif").write_bytes(b"the last good one")
    with unwritable(media):
        result = attempt(render_command("mnist", params, prepared_mnist, tmp_path), ROOT, stage_env, timeout=600)
    assert result.returncode == 2, result.stderr[-3000:]
    # the GIF writer that could not open its file is closed, not left for its destructor to retry
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    gif = media / "categorical_0.gif"
    assert re.fullmatch(
        rf"error: cannot write {re.escape(str(gif))} \((Operation not permitted|Permission denied)\); "
        rf"make {re.escape(str(media))} writable and run again",
        result.stderr.splitlines()[-1],
    )
    assert gif.read_bytes() == b"the last good one" and [p.name for p in media.iterdir()] == ["categorical_0.gif"]


def test_any_other_os_error_at_a_stages_top_is_one_line_with_exit_2(capsys):
    @entry_point
    def main() -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "data/prepared/mnist/test.pt")

    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "error: No such file or directory: data/prepared/mnist/test.pt\n"
