"""A model trained by an earlier main renders with today's render command: the same media to the
byte, and the same metrics.

tests/fixtures/model_2984f4a/ is what the train stage of main at 2984f4a wrote for a tiny MNIST
model (its params.yaml, 2 epochs of 10 batches, one torch thread): model.ckpt, config.json, run.json
and the history. `rendered.sha256` holds the digests of the media that commit's render wrote from
it, with the same params and one torch thread; `rendered_metrics.json` the metrics that main at
e3f7226 (whose render wrote the same files as 2984f4a's) wrote from it on a Zen 4 CPU, before the
width of the digits was measured and while slant was read from the ink rather than the skeleton
(docs/model.md). That checkpoint's hyperparameters
have sections (`optim`) that today's configuration no longer has: render reads its model section
alone, and the render params added since then are filled in with today's values.

The metrics are compared within a tolerance, not to the byte: their sums round differently on CPUs
with and without AVX-512 (CI's machine may be either), which moves the model's metrics in the
last digits and can move a test image or two of the digit classifier that render trains.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "model_2984f4a"

pytestmark = pytest.mark.slow  # the render trains the digit classifier on 2,000 images: seconds, not minutes


def expected_digests() -> dict[str, str]:
    lines = (FIXTURE / "rendered.sha256").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines)}


def with_new_keys(old: dict, today: dict) -> dict:
    """`old` with the keys params.yaml gained since then added at today's values; old values stay."""
    merged = {**today, **old}
    for key, value in old.items():
        if isinstance(value, dict) and isinstance(today.get(key), dict):
            merged[key] = with_new_keys(value, today[key])
    return merged


def test_a_model_trained_by_2984f4a_renders_the_same_files(tmp_path, prepared_mnist, stage_env):
    params = yaml.safe_load((FIXTURE / "params.yaml").read_text())
    params = with_new_keys(params, yaml.safe_load((ROOT / "params.yaml").read_text()))
    params["tracking"] = {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "artifact_root": str(tmp_path / "mlartifacts")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.ckpt", "config.json", "run.json"):
        shutil.copy(FIXTURE / name, model / name)
    # the render command of dvc.yaml, with this folder's paths
    command = [
        sys.executable,
        "-m",
        "pipeline.render",
        "--dataset",
        "mnist",
        "--params",
        str(tmp_path / "params.yaml"),
        "--model",
        str(model),
        "--data",
        str(prepared_mnist),
        "--media",
        str(tmp_path / "media"),
        "--metrics",
        str(tmp_path / "metrics.json"),
        "--history",
        str(FIXTURE / "train_history.csv"),
    ]
    done = subprocess.run(command, cwd=ROOT, env=stage_env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    media = {
        str(path.relative_to(tmp_path)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((tmp_path / "media").iterdir())
    }
    expected = expected_digests()
    assert media == {name: digest for name, digest in expected.items() if name.startswith("media/")}
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    before = json.loads((FIXTURE / "rendered_metrics.json").read_text())
    added = {key for key in metrics if key not in before}
    measured_since = {f"factor/continuous_{code}/width_spearman" for code in (0, 1)} | {
        f"factor/continuous_{code}/{prop}_change" for code in (0, 1) for prop in ("slant", "width", "thickness")
    }
    assert added == measured_since
    # slant is the skeleton's shear since 2026-12-07 (docs/model.md): what today's render read, on a Zen 5
    remeasured = {"factor/continuous_0/slant_spearman": 0.38857, "factor/continuous_1/slant_spearman": -0.09595}
    for key, value in remeasured.items():
        assert metrics[key] == pytest.approx(value, abs=1e-4), key
    for key, value in before.items():
        if key in remeasured:
            continue
        tolerance = 0.01 if key.startswith("generated/") else 1e-4  # a trained classifier's, or the model's own
        assert metrics[key] == pytest.approx(value, abs=tolerance), key
