"""The throughput benchmark runs end to end on a tiny setting and prints its figures."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infogan.training.module import InfoGANTraining
from pipeline.params import parse_params, shipped_params

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(tmp_path: Path, mnist_fixture_dir: Path, *args: str) -> str:
    """Run the benchmark on the fixture MNIST files at batch 16; return its stdout, asserting success."""
    raw = tmp_path / "raw"
    shutil.copytree(mnist_fixture_dir, raw, ignore=shutil.ignore_patterns("MD5SUMS"))
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/train_throughput.py"),
            "--raw-dir",
            str(raw),
            "--batch-size",
            "16",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow  # runs the benchmark
def test_benchmark_prints_rates_ratio_and_memory(tmp_path, mnist_fixture_dir):
    out = run_benchmark(tmp_path, mnist_fixture_dir, "--steps", "4", "--warmup", "1", "--repeats", "2")
    runs = re.findall(r"run (\d) (baseline|ours)\s+([\d.]+) images/s\s+peak RSS\s+(\d+) MiB", out)
    # alternated: A B A B
    assert [(r, kind) for r, kind, _, _ in runs] == [("1", "baseline"), ("1", "ours"), ("2", "baseline"), ("2", "ours")]
    assert all(float(rate) > 0 and int(rss) > 100 for _, _, rate, rss in runs)
    medians = dict(re.findall(r"^(baseline|ours)\s+median\s+([\d.]+) images/s", out, re.M))
    ratio = float(re.search(r"ratio ours / baseline: ([\d.]+)x", out).group(1))
    # the ratio of the medians, as printed: rates to 0.1, the ratio to 0.01
    ours, baseline = float(medians["ours"]), float(medians["baseline"])
    assert (ours - 0.05) / (baseline + 0.05) - 0.005 <= ratio <= (ours + 0.05) / (baseline - 0.05) + 0.005


@pytest.mark.slow  # runs the benchmark
def test_ladder_runs_each_step_from_baseline_to_ours(tmp_path, mnist_fixture_dir):
    out = run_benchmark(tmp_path, mnist_fixture_dir, "--steps", "3", "--warmup", "1", "--repeats", "1", "--ladder")
    medians = re.findall(r"^(\S+)\s+median\s+([\d.]+) images/s.*?([\d.]+)x baseline$", out, re.M)
    # on this CPU `compile: auto` is eager, so the last run is ours compiled
    assert [name for name, _, _ in medians] == ["baseline", "+device", "+1xG", "+fused", "ours", "compiled"]
    assert float(medians[0][2]) == 1.0


@pytest.mark.slow  # runs the benchmark
def test_improved_arm_reports_its_step_time_relative_to_ours(tmp_path, mnist_fixture_dir):
    out = run_benchmark(tmp_path, mnist_fixture_dir, "--steps", "3", "--warmup", "1", "--repeats", "1", "--improved")
    medians = dict(re.findall(r"^(baseline|ours|improved)\s+median\s+([\d.]+) images/s", out, re.M))
    assert set(medians) == {"baseline", "ours", "improved"}
    ratio = float(re.search(r"ratio improved / ours \(step time\): ([\d.]+)x", out).group(1))
    # the ratio of the medians, as printed: rates to 0.1 (at a few images/s that alone moves the
    # ratio by more than 0.02), the ratio to 0.01
    ours, improved = float(medians["ours"]), float(medians["improved"])
    assert (ours - 0.05) / (improved + 0.05) - 0.005 <= ratio <= (ours + 0.05) / (improved - 0.05) + 0.005


def load_benchmark():
    spec = importlib.util.spec_from_file_location("train_throughput", ROOT / "benchmarks/train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("recipe", ["paper", "improved"])
def test_the_benchmark_trains_the_model_the_train_stage_builds_from_params_yaml(recipe):
    """The benchmark measures what `dvc repro` trains: the same values, from params.yaml."""
    bench = load_benchmark()
    arm = bench.Arm("ours" if recipe == "paper" else "improved", InfoGANTraining, True, "32-true", False, recipe)
    expected = parse_params(shipped_params({"train.recipe": recipe})).training("mnist").to_dict()
    assert dict(bench.module_for(arm).hparams) == expected
