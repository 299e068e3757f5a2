"""benchmarks/gpu_check.sh, run small on the CPU: every figure and file it promises lands in $OUT."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_benchmark_training_and_render_into_out(tmp_path, mnist_fixture_dir, repository_state):
    raw, out = tmp_path / "raw", tmp_path / "out"
    shutil.copytree(mnist_fixture_dir, raw, ignore=shutil.ignore_patterns("MD5SUMS"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["prepare"]["mnist"]["mirrors"] = []
    params["train"].update(batch_size=16, batches_per_epoch=2, max_epochs=2, sample_every_n_epochs=1)
    params["improved"].update(neighbours=0)  # a minute of CPU per training (conftest.py, tiny_params)
    params["render"].update(continuous_frames=3, mi_samples=200)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    before = repository_state()

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        OUT=str(out),
        PARAMS=str(tmp_path / "params.yaml"),
        RAW_DIR=str(raw),
        BENCH_ARGS="--steps 3 --warmup 1 --repeats 1 --batch-size 16",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    expected = {
        "summary.txt",
        "benchmark.txt",
        "benchmark_eager.txt",
        "train.log",
        "render.log",
        "metrics.json",
        "train_history.csv",
        "media.tar",
    }
    assert {p.name for p in out.iterdir()} == expected  # flat, and within the device tool's 8 files
    summary = (out / "summary.txt").read_text()
    for line in (
        "benchmark (compile: auto): ",
        "benchmark (compile: false): ",
        "train: ",
        "render: ",
        "compile auto:  ratio ours / baseline: ",
        "compile false: ratio ours / baseline: ",
        "metrics: ",
    ):
        assert line in summary, summary
    assert "compile True" not in (out / "benchmark.txt").read_text()  # auto is eager on this CPU
    assert "compile False" in (out / "benchmark_eager.txt").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["eval/categorical_accuracy"] <= 1
    with tarfile.open(out / "media.tar") as tar:
        names = set(tar.getnames())
    assert {"media/categorical_0.gif", "media/continuous_0.gif", "media/continuous_1.gif"} <= names
    assert repository_state() == before  # the repository is left as it was
