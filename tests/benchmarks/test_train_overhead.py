"""benchmarks/train_overhead.py runs end to end on a small prepared folder and prints a rate per setting."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch

from infogan.data.neighbours import FILE

ROOT = Path(__file__).resolve().parents[2]


def test_train_overhead_prints_every_setting(tmp_path):
    generator = torch.Generator().manual_seed(0)
    for split, n in (("train", 64), ("test", 40)):
        images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=generator)
        torch.save({"images": images, "labels": torch.arange(n) % 10}, tmp_path / f"{split}.pt")
    torch.save({"neighbours": torch.randint(0, 64, (64, 10), generator=generator)}, tmp_path / FILE)
    command = [sys.executable, "benchmarks/train_overhead.py", "--data", str(tmp_path), "--threads", "1"]
    command += ["--batch-size", "16", "--batches-per-epoch", "3", "--epochs", "2", "--skip", "2", "--repeats", "1"]
    command += ["--updates", "2", "--evaluations", "1", "--set", "improved.augmented_information_rows=8"]
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert re.search(r"^with improved.augmented_information_rows=8$", out, re.M), out
    settings = ("step alone", "+ neighbour pairs", "+ moving average", "  (Lightning's update)")
    for setting in (*settings, "+ per-epoch evaluation"):
        assert re.search(rf"^{re.escape(setting)} +\d+ images/s$", out, re.M), (setting, out)
    update = r"^one update of the average of [\d.]+ M weights: lerp [\d.]+ ms, Lightning's [\d.]+ ms \([\d.]+x\)$"
    assert re.search(update, out, re.M), out
    assert re.search(r"^one evaluation of 40 test images: fp32 [\d.]+ s(, bf16 [\d.]+ s)?$", out, re.M), out
