"""benchmarks/step_pieces.py runs end to end on a small batch and prints every figure it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch

from benchmarks.step_pieces import module_and_batch, whole_iteration
from pipeline.params import parse_params, shipped_params

ROOT = Path(__file__).resolve().parents[2]


def test_step_pieces_prints_each_piece_and_each_whole_iteration():
    command = [sys.executable, "benchmarks/step_pieces.py", "--threads", "1", "--batch-size", "8", "--repeats", "1"]
    command += ["--layouts", "contiguous", "channels_last"]
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for piece in ("G forward ", "trunk + Q head forward and backward", "G forward + D's step", "G forward + G's step"):
        assert re.search(rf"^{re.escape(piece)}.*\d+\.\d ms$", out, re.M), (piece, out)
    for layout in ("contiguous", "channels_last"):
        assert re.search(rf"^whole iteration, {layout} .* ms +\d+ images/s$", out, re.M), (layout, out)


def test_step_pieces_times_the_recipe_beside_each_variant_and_each_term_left_out():
    command = [sys.executable, "benchmarks/step_pieces.py", "--threads", "1", "--batch-size", "8", "--repeats", "1"]
    command += ["--layouts", "contiguous", "--set", "improved.continuous_orthogonal=1.0"]
    command += [
        "--without",
        "improved.continuous_orthogonal",
        "--variant",
        "improved.continuous_rows=4,train.lambda_cont=0.2",
    ]
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    settings = (
        "contiguous",
        "without improved.continuous_orthogonal",
        "with improved.continuous_rows=4,train.lambda_cont=0.2",
    )
    for setting in settings:
        assert re.search(rf"^whole iteration, {re.escape(setting)} .* ms +\d+ images/s$", out, re.M), (setting, out)


def test_step_pieces_refuses_a_setting_the_params_refuse_before_timing_anything():
    command = [sys.executable, "benchmarks/step_pieces.py", "--threads", "1", "--batch-size", "8", "--repeats", "1"]
    command += ["--set", "improved.continuous_stagger=10", "improved.continuous_anchor=1.0"]
    command += ["improved.continuous_anchor_retake=20", "--without", "improved.continuous_anchor"]
    done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2, done
    assert (
        "without improved.continuous_anchor: improved: continuous_anchor_retake needs continuous_anchor" in done.stderr
    )
    assert "Traceback" not in done.stderr and " ms" not in done.stdout, done


def test_a_timed_iteration_computes_only_each_steps_own_gradients_as_training_does():
    """G's step adds nothing to D's weights' gradients (Lightning's toggled_optimizer turns them off
    in training): after a whole timed iteration they are what D's step alone gives, from the same draws."""
    config = parse_params(shipped_params({"train.recipe": "improved"})).training("mnist")
    module, real, partners = module_and_batch(config, torch.contiguous_format, False, 8)
    autocast = lambda: torch.autocast("cpu", enabled=False)  # noqa: E731
    d_weights = [*module.model.trunk.parameters(), *module.model.d_head.parameters()]
    flags = [p.requires_grad for p in module.parameters()]
    torch.manual_seed(3)
    whole_iteration(module, real, partners, autocast)()
    assert [p.requires_grad for p in module.parameters()] == flags  # each step's freeze undone
    after_both = [p.grad.clone() for p in d_weights]
    assert all(p.grad is not None for p in module.model.generator.parameters())  # G's step ran, backward too
    module.zero_grad(set_to_none=True)
    torch.manual_seed(3)
    latent = module.model.codes.sample(8)
    fake = module.model.generator(latent.vector)
    module.discriminator_step(real, fake, latent, partners)["total"].backward()
    for both, alone in zip(after_both, (p.grad for p in d_weights), strict=True):
        assert torch.allclose(both, alone, atol=1e-6)
