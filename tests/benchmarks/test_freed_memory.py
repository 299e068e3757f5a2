"""benchmarks/freed_memory.py runs the real train stage with malloc as glibc comes and as the stage
sets it, and finds the two trainings the same to the bit."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_MODEL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # trains
def test_freed_memory_times_both_settings_on_the_same_training(prepared_mnist):
    tiny = [f"model.mnist.{key}={value}" for key, value in TINY_MODEL.items()]
    tiny += ["train.batch_size=16", "improved.neighbours=0"]  # conftest.py, tiny_params: no neighbour search
    tiny += ["train.max_epochs=20"]  # --epochs wins over it
    command = [sys.executable, "benchmarks/freed_memory.py", "--data", str(prepared_mnist), "--threads", "1"]
    command += ["--epochs", "2", "--batches-per-epoch", "3", "--repeats", "1", "--set", *tiny]
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True, timeout=600).stdout
    assert re.search(r"^1 threads, 6 iterations of the train stage, each setting 1 times$", out, re.M), out
    for name in ("as glibc comes", "kept \\(the stage's\\)"):
        row = rf"^{name} +\d+ images/s in \d+ s, [\d.]+ M faults, \d+ MiB$"
        assert re.search(row, out, re.M), (name, out)
    assert re.search(r"^kept / as glibc comes: [\d.]+x images/s, [\d.]+x page faults$", out, re.M), out
    assert re.search(r"^histories: identical$", out, re.M), out
