"""The benchmarks that train with `--set` overrides stop on a value the params refuse, before they
train: argparse's `error:` line naming the key, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "script, setting, key",
    [
        ("train_overhead.py", "improved.augmented_information_rows=-1", "augmented_information_rows"),
        ("freed_memory.py", "train.batch_size=0", "batch_size"),
    ],
)
def test_a_refused_value_stops_the_benchmark_before_it_trains(script, setting, key):
    command = [sys.executable, f"benchmarks/{script}", "--set", setting]
    done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and key in done.stderr and "error:" in done.stderr, done
    assert "Traceback" not in done.stderr and "images/s" not in done.stdout, done
