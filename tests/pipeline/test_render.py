"""Render's file naming: frames in label order, continuous GIFs named by factor, stale files removed;
and its metrics in the training's MLflow run, as the latest values there."""

from __future__ import annotations

import time

import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from infogan.config import TrackingConfig
from infogan.evaluation.history import final_losses, last_iteration, read_history
from infogan.model.infogan import InfoGAN
from pipeline import tracking
from pipeline.params import shipped_model, shipped_render
from pipeline.render import render_traversals

CONFIG = shipped_render(continuous_frames=3, samples_per_row=4, scale=1)


def module() -> InfoGAN:
    torch.manual_seed(0)
    return InfoGAN(shipped_model()).eval()


def test_named_codes_get_their_property_as_file_name(tmp_path):
    written = render_traversals(module(), CONFIG, tmp_path, {}, {1: "thickness"})
    expected = {"categorical_0", "continuous_0", "thickness"}
    assert {p.name for p in written} == {f"{stem}.{ext}" for stem in expected for ext in ("gif", "png")}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_our_stale_files_go_and_everything_else_stays(tmp_path):
    for name in ("continuous_1.gif", "continuous_1.png", "slant.gif", "categorical_3.png", "notes.txt", "other.gif"):
        (tmp_path / name).write_bytes(b"old")
    render_traversals(module(), CONFIG, tmp_path, {}, {0: "slant"})
    # categorical_3.png belongs to a code this model lacks: gone; notes.txt and other.gif are not ours
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "categorical_0.gif",
            "categorical_0.png",
            "slant.gif",
            "slant.png",
            "continuous_1.gif",
            "continuous_1.png",
            "notes.txt",
            "other.gif",
        ]
    )
    for rewritten in ("slant.gif", "continuous_1.gif"):
        assert (tmp_path / rewritten).read_bytes() != b"old"
    assert (tmp_path / "other.gif").read_bytes() == b"old"


def test_renders_metrics_are_the_latest_in_the_training_run(tmp_path):
    """Training logged its last evaluation at its last iteration; render's, logged after it, must be what
    MLflow (and its UI) shows as the run's value, dated now and not at step 0 in 1970."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = TrackingConfig(uri=uri, artifact_root=str(tmp_path / "mlartifacts"))
    run_id = tracking.start_run(store, "mnist", {"train": {"seed": 0}}, {}, "mnist-paper-seed0")
    client = MlflowClient(uri)
    trained_ms = int(time.time() * 1000) - 60_000  # as the train stage logged it, a minute earlier
    client.log_batch(run_id, metrics=[Metric("eval/categorical_accuracy", 0.9, trained_ms, 20)])
    history = tmp_path / "history.csv"  # as the train stage writes it: 2 epochs of 10 iterations
    history.write_text("epoch,iteration,loss/d,loss/g\n0,10,1.2,0.8\n1,20,1.1,0.7\n")

    table = read_history(history)
    before = int(time.time() * 1000)
    metrics = {"eval/categorical_accuracy": 0.5, **final_losses(table)}
    tracking.log_metrics(client, run_id, metrics, step=last_iteration(table))
    latest = client.get_run(run_id).data.metrics
    assert latest["eval/categorical_accuracy"] == 0.5 and latest["final/loss/g"] == 0.7
    [rendered] = [m for m in client.get_metric_history(run_id, "eval/categorical_accuracy") if m.value == 0.5]
    assert rendered.step == 20
    assert before <= rendered.timestamp <= int(time.time() * 1000)
