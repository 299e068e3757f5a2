"""The memory-growth check runs the real train stage twice on a tiny setting and prints its verdict."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

ROOT = Path(__file__).resolve().parents[2]


def test_memory_growth_compares_a_short_and_a_long_training(tmp_path, prepared_mnist, repository_state):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(batch_size=16, batches_per_epoch=3, sample_every_n_epochs=1)
    params["improved"].update(neighbours=0)  # a minute of CPU per training (conftest.py, tiny_params)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))

    before = repository_state()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/memory_growth.py"),
            "--params",
            str(params_file),
            "--data",
            str(prepared_mnist),
            "--epochs",
            "1",
            "--factor",
            "10",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout
    runs = re.findall(
        r"^(short|long)\s+(\d+) epochs\s+(\d+) iterations\s+([\d.]+) s\s+peak RSS\s+(\d+) MiB"
        r"\s+in MLflow\s+(\d+) MiB",
        out,
        re.M,
    )
    assert [(name, int(epochs), int(iters)) for name, epochs, iters, *_ in runs] == [
        ("short", 1, 3),
        ("long", 10, 30),
    ], out + result.stderr[-3000:]
    for *_, peak, logged in runs:  # the stage's own record in MLflow: its peak by its last epoch's end
        assert 0.8 * int(peak) <= int(logged) <= int(peak) + 1
    ratio = float(re.search(r"peak RSS long / short: ([\d.]+)x", out).group(1))
    assert abs(ratio - int(runs[1][4]) / int(runs[0][4])) < 0.01
    assert int(runs[0][4]) > 100  # a real process measured, not a default
    assert result.returncode == (0 if ratio <= 1.10 else 1)
    assert ratio <= 1.10, out
    assert repository_state() == before  # its MLflow store and artifacts went to a scratch folder
