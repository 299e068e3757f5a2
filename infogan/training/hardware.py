"""What trains fastest on the hardware at hand, for `precision: auto` and `compile: auto`.

bf16 autocast is cheaper for the matrix products that dominate this model on CPUs with
AVX512-BF16 or AMX, and on GPUs with bf16 it uses the tensor cores; it does not change what the
model learns. torch.compile fuses the many small elementwise kernels (batch norm, leaky ReLU, the
losses) that dominate a GPU step of this small model; on a CPU it costs compilation time and gained
nothing, so auto leaves it off there. The measurements, with their commands, are in
docs/benchmarks.md (benchmarks/train_throughput.py, benchmarks/precision_check.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_supports_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU has native bf16 dot products (Linux; elsewhere assume not)."""
    try:
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in BF16_CPU_FLAGS)


def fastest_precision(accelerator: str) -> str:
    """A Lightning precision string for `accelerator` ('auto', 'cpu', 'gpu', 'cuda' or 'mps')."""
    if uses_cuda(accelerator):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    if accelerator in ("auto", "cpu"):
        return "bf16-mixed" if cpu_supports_bf16() else "32-true"
    return "32-true"


def resolve_precision(requested: str, accelerator: str) -> str:
    """`requested`, or for 'auto' the fastest precision for `accelerator`."""
    return fastest_precision(accelerator) if requested == "auto" else requested


def uses_cuda(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def resolve_compile(requested: bool | str, accelerator: str) -> bool:
    """`requested`, or for 'auto': compile on CUDA, run eagerly elsewhere."""
    return uses_cuda(accelerator) if requested == "auto" else bool(requested)
