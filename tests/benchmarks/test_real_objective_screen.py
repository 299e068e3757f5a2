"""The real-objective screen trains D's trunk and Q's head on real MNIST with each objective and
prints Q's test accuracy at its evaluation steps."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("objective", ["consistency", "entropies", "information"])
def test_screen_prints_the_accuracy_at_each_evaluation(objective, prepared_mnist, repository_state):
    before = repository_state()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/real_objective_screen.py"),
            "--data",
            str(prepared_mnist),
            "--objective",
            objective,
            "--steps",
            "4",
            "--eval-every",
            "2",
            "--scale",
            "0.15",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"objective {objective}, seed 0, 1 thread(s)" in result.stdout
    assert "scale 0.15" in result.stdout
    steps = re.findall(r"step (\d+): loss (-?[\d.]+), accuracy ([\d.]+)", result.stdout)
    assert [int(step) for step, _, _ in steps] == [2, 4]
    for _, _, accuracy in steps:
        assert 0.0 < float(accuracy) <= 1.0  # Hungarian-matched: at least the largest class's share
    assert repository_state() == before
