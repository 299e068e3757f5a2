"""pipeline.sweep on a tiny setting: one training and one render per seed, a table with mean and minimum, tagged
MLflow runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, prepared_mnist):
    tmp = tmp_path_factory.mktemp("sweep")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(batch_size=16, batches_per_epoch=2, max_epochs=1, sample_every_n_epochs=1)
    params["improved"].update(neighbours=0)  # a minute of CPU per training (conftest.py, tiny_params)
    params["render"].update(mi_samples=200, factor_samples=10, purity_samples=20, classifier_images=2000)
    params["tracking"].update(uri=f"sqlite:///{tmp / 'mlflow.db'}", artifact_root=str(tmp / "mlartifacts"))
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.sweep",
            "--dataset",
            "mnist",
            "--params",
            str(tmp / "params.yaml"),
            "--data",
            str(prepared_mnist),
            "--seeds",
            "3",
            "5",
            "--out",
            str(tmp / "sweeps"),
            "--table",
            str(tmp / "sweep.csv"),
            "--set",
            "train.lr_g=0.0005",
            "train.recipe=improved",
            "--jobs",
            "2",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp, result.stdout


def test_sweep_table_has_each_seed_then_mean_and_min(sweep):
    tmp, stdout = sweep
    table = pd.read_csv(tmp / "sweep.csv")
    assert list(table["seed"]) == ["3", "5", "mean", "min"]
    seeds = table.iloc[:2]
    numeric = [
        "eval/categorical_accuracy",
        "eval/categorical_nmi",
        "info_bound/categorical_0",
        "generated/purity_mean",
        "generated/distinct_digits",
        *(f"continuous_{code}/abs_rho_{prop}" for code in (0, 1) for prop in ("slant", "width", "thickness")),
        *(f"continuous_{code}/change_{prop}" for code in (0, 1) for prop in ("slant", "width", "thickness")),
        "train_s",
        "render_s",
    ]
    for column in numeric:
        values = seeds[column].astype(float)
        assert table.iloc[2][column] == pytest.approx(values.mean()), column
        assert table.iloc[3][column] == pytest.approx(values.min()), column
    assert (seeds["eval/categorical_accuracy"].between(0, 1)).all() and (seeds["train_s"] > 0).all()
    for code in (0, 1):
        assert seeds[f"continuous_{code}/abs_rho_slant"].astype(float).between(0, 1).all()
        assert set(seeds[f"continuous_{code}/name"].fillna("")) <= {"", "slant", "width", "thickness"}
    assert "mean" in stdout and "min" in stdout


def test_each_seed_is_rendered_and_its_row_is_its_render(sweep):
    """The row's numbers are those render wrote into the seed's metrics.json, and its names those of its GIFs."""
    tmp, _ = sweep
    table = pd.read_csv(tmp / "sweep.csv").iloc[:2]
    for _, row in table.iterrows():
        folder = tmp / "sweeps" / f"seed_{row['seed']}"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert float(row["eval/categorical_accuracy"]) == pytest.approx(metrics["eval/categorical_accuracy"])
        rho = metrics["factor/continuous_1/width_spearman"]
        assert float(row["continuous_1/abs_rho_width"]) == pytest.approx(abs(rho))
        assert float(row["continuous_0/change_slant"]) == pytest.approx(metrics["factor/continuous_0/slant_change"])
        gifs = {path.stem for path in (folder / "media").glob("*.gif")}
        names = [row[f"continuous_{code}/name"] for code in (0, 1)]
        expected = {name if isinstance(name, str) else f"continuous_{code}" for code, name in enumerate(names)}
        assert gifs == {"categorical_0"} | expected


def test_each_seed_trained_with_its_seed_and_is_a_tagged_mlflow_run(sweep):
    tmp, _ = sweep
    table = pd.read_csv(tmp / "sweep.csv").iloc[:2]
    client = MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    tags = set()
    for seed, run_id in zip(table["seed"], table["run_id"], strict=True):
        run = client.get_run(run_id)
        assert run.data.params["train.seed"] == seed
        # the overrides reached training, and the run says which they were
        assert run.data.params["train.lr_g"] == "0.0005" and run.data.params["train.recipe"] == "improved"
        assert run.data.params["improved.real_consistency"] == "1.0"
        assert run.data.tags["seed_sweep_overrides"] == "train.lr_g=0.0005 train.recipe=improved"
        assert "improved/real_consistency_epoch" in run.data.metrics
        assert {"eval/categorical_accuracy", "generated/purity_mean", "wall_s", "render_s"} <= set(run.data.metrics)
        tags.add(run.data.tags["seed_sweep"])
        assert (tmp / "sweeps" / f"seed_{seed}" / "model" / "model.ckpt").is_file()
    assert len(tags) == 1  # one sweep id for both


def test_sweep_rejects_repeated_seeds(sweep, prepared_mnist):
    tmp, _ = sweep
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.sweep",
            "--dataset",
            "mnist",
            "--params",
            str(tmp / "params.yaml"),
            "--data",
            str(prepared_mnist),
            "--seeds",
            "1",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "error: --seeds must be distinct" in result.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr_gen=1", "params.yaml has no key train.lr_gen"),
        ("train", "must look like dotted.key=value"),
        ("train.recipe=best", "train.recipe = 'best' is invalid"),
    ],
)
def test_sweep_rejects_bad_overrides_before_training(sweep, prepared_mnist, override, message):
    tmp, _ = sweep
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.sweep",
            "--dataset",
            "mnist",
            "--params",
            str(tmp / "params.yaml"),
            "--data",
            str(prepared_mnist),
            "--seeds",
            "1",
            "--out",
            str(tmp / "bad"),
            "--set",
            override,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp / "bad").exists()


def test_stopping_the_sweep_stops_its_training(sweep, prepared_mnist):
    """SIGTERM to the sweep while two seeds train: both training processes go too."""
    import signal
    import time

    tmp, _ = sweep
    out = tmp / "stopped"
    sweep_process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.sweep",
            "--dataset",
            "mnist",
            "--params",
            str(tmp / "params.yaml"),
            "--data",
            str(prepared_mnist),
            "--seeds",
            "7",
            "8",
            "--jobs",
            "2",
            "--out",
            str(out),
            "--set",
            "train.max_epochs=1000",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    logs = [out / f"seed_{seed}" / "train.log" for seed in (7, 8)]
    deadline = time.monotonic() + 300
    while not all("MLflow run" in (log.read_text() if log.exists() else "") for log in logs):
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.5)  # wait until both trainings have started
    children = subprocess.run(
        ["pgrep", "-P", str(sweep_process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(children) == 2
    sweep_process.send_signal(signal.SIGTERM)
    assert sweep_process.wait(timeout=60) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 60
    while any(Path(f"/proc/{child}").exists() for child in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(Path(f"/proc/{child}").exists() for child in children), "a training outlived the sweep"


def test_sweep_rejects_zero_jobs(sweep, prepared_mnist):
    tmp, _ = sweep
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.sweep",
            "--dataset",
            "mnist",
            "--params",
            str(tmp / "params.yaml"),
            "--data",
            str(prepared_mnist),
            "--seeds",
            "1",
            "--jobs",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "error: --jobs must be at least 1" in result.stderr


def test_an_interrupted_sweep_resumes_its_seed_where_it_stopped(sweep, prepared_mnist):
    """What DVC's queue cannot do (docs/operations.md, "Seed sweeps"): stopped after a checkpoint,
    the same sweep run again resumes the seed from it, in the same MLflow run, and finishes."""
    import signal
    import time

    tmp, _ = sweep
    out = tmp / "resumed"
    command = [
        *("-m", "pipeline.sweep", "--dataset", "mnist", "--params", str(tmp / "params.yaml")),
        *("--data", str(prepared_mnist), "--seeds", "9", "--out", str(out), "--table", str(tmp / "resumed.csv")),
        # 100 iterations in 5 epochs (each epoch ends with an evaluation on the 10,000 test images)
        *("--set", "train.max_epochs=5", "train.batches_per_epoch=20", "train.checkpoint_every_n_steps=4"),
    ]
    first = subprocess.Popen([sys.executable, *command], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "seed_9" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists():
        assert time.monotonic() < deadline and first.poll() is None, "no checkpoint before the training ended"
        time.sleep(0.2)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 128 + signal.SIGTERM
    assert checkpoint.exists() and not (tmp / "resumed.csv").exists()
    started = (out / "seed_9" / "train.log").read_text()
    run_id = started.split("MLflow run ")[1].split()[0]

    again = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    log = (out / "seed_9" / "train.log").read_text()
    assert f"resuming MLflow run {run_id} from {checkpoint} at iteration " in log
    assert pd.read_csv(tmp / "resumed.csv")["seed"].tolist() == ["9", "mean", "min"]
    assert not checkpoint.exists()  # finished: nothing left to resume
