"""benchmarks/traversal_lean.py on a small untrained model: one row per code, its shares and rhos in range."""

from __future__ import annotations

import math

import torch

from benchmarks.traversal_lean import code_leans
from infogan.model.infogan import InfoGAN
from pipeline.params import shipped_model

TINY = {"g_fc": (16,), "g_base_channels": 8, "g_upconv": (4,), "d_conv": (4, 8), "d_fc": (8,), "q_hidden": 8}


def test_each_continuous_code_gets_a_row_whose_split_adds_up():
    torch.manual_seed(0)
    model = InfoGAN(shipped_model(**TINY)).eval()
    rows = code_leans(model, n_samples=20)
    assert len(rows) == model.codes.n_continuous == 2
    for row in rows:
        assert 0 <= row["right"] <= 1
        for key in ("slant_rho", "slant_rho_right", "slant_rho_left"):
            assert math.isnan(row[key]) or -1 <= row[key] <= 1, row
        assert math.isfinite(row["slant_change"]) and math.isfinite(row["width_change"])
