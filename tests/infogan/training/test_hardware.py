"""Tests for infogan.training.hardware: `precision: auto` picks bf16 only where the hardware has it,
and the train stage's malloc keeps the memory freed tensors leave."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from infogan.training import hardware


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("fpu sse2 avx2 avx512f avx512_bf16", True),
        ("fpu sse2 avx2 amx_bf16 amx_tile", True),
        ("fpu sse2 avx2 avx512f", False),
        ("fpu sse2 avx512_bf16x", False),  # whole flags only
    ],
)
def test_cpu_bf16_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert hardware.cpu_supports_bf16(cpuinfo) is expected


def test_unreadable_cpuinfo_means_no_bf16(tmp_path):
    assert hardware.cpu_supports_bf16(tmp_path / "missing") is False


@pytest.mark.parametrize("bf16, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_cpu_precision_follows_bf16_support(monkeypatch, bf16, expected):
    monkeypatch.setattr(hardware, "cpu_supports_bf16", lambda: bf16)
    assert hardware.fastest_precision("cpu") == expected
    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: False)
    assert hardware.fastest_precision("auto") == expected


@pytest.mark.parametrize("bf16, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_gpu_precision_follows_bf16_support(monkeypatch, bf16, expected):
    monkeypatch.setattr(hardware.torch.cuda, "is_bf16_supported", lambda: bf16)
    assert hardware.fastest_precision("gpu") == expected


def test_mps_stays_fp32():
    assert hardware.fastest_precision("mps") == "32-true"


def test_resolve_precision_keeps_an_explicit_choice(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_supports_bf16", lambda: True)
    assert hardware.resolve_precision("32-true", "cpu") == "32-true"
    assert hardware.resolve_precision("auto", "cpu") == "bf16-mixed"


ROOT = Path(__file__).resolve().parents[3]

# in a fresh process: six iterations of the improved recipe's arithmetic at batch 32 (no optimizer;
# benchmarks/step_pieces.py), each iteration's minor page faults printed
ITERATIONS = """
import resource, sys, torch
from infogan.training.hardware import keep_freed_memory
print(keep_freed_memory())
sys.path.insert(0, ".")
from benchmarks.step_pieces import module_and_batch, whole_iteration
from pipeline.params import parse_params, shipped_params
config = parse_params(shipped_params({"train.recipe": "improved"})).training("mnist")
module, real, partners = module_and_batch(config, torch.contiguous_format, False, 32)
step = whole_iteration(module, real, partners, lambda: torch.autocast("cpu", enabled=False))
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*faults)
"""


def faults_per_iteration(keep: str) -> tuple[bool, list[int]]:
    env = {**os.environ, hardware.KEEP_FREED_MEMORY: keep, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", ITERATIONS]
    out = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    kept, faults = out.splitlines()[-2:]
    return kept == "True", [int(n) for n in faults.split()]


def huge_pages_always() -> bool:
    """Whether the kernel backs large allocations with 2 MiB pages unasked, which counts far fewer faults."""
    try:
        return "[always]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="sets glibc's malloc")
@pytest.mark.skipif(huge_pages_always(), reason="counts pages of 4 KiB")
def test_kept_memory_is_not_faulted_in_again():
    """As glibc comes, each training iteration faults thousands of pages in again (11,000 to 19,000
    here); kept, an iteration after the first few faults none."""
    kept, faults = faults_per_iteration("0")
    assert not kept and min(faults[3:]) > 5_000, faults
    kept, faults = faults_per_iteration("1")
    assert kept and min(faults[3:]) < 1_000, faults


def test_freed_memory_is_left_alone_when_asked():
    assert not hardware.keep_freed_memory({hardware.KEEP_FREED_MEMORY: "0"})
