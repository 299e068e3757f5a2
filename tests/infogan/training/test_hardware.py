"""Tests for infogan.training.hardware: `precision: auto` picks bf16 only where the hardware has it."""

from __future__ import annotations

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
