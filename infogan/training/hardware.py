"""What trains fastest on the hardware at hand, for `precision: auto` and `compile: auto`, and a
malloc that keeps the memory freed tensors leave (keep_freed_memory, which the train stage calls).

bf16 autocast is cheaper for the matrix products that dominate this model on CPUs with
AVX512-BF16 or AMX, and on GPUs with bf16 it uses the tensor cores; it does not change what the
model learns. torch.compile fuses the many small elementwise kernels (batch norm, leaky ReLU, the
losses) that dominate a GPU step of this small model; on a CPU it costs compilation time and gained
nothing, so auto leaves it off there. The measurements, with their commands, are in
docs/benchmarks.md (benchmarks/train_throughput.py, benchmarks/precision_check.py,
benchmarks/freed_memory.py).
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping
from pathlib import Path

import torch

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

# mallopt's parameters (glibc's malloc.h) and the values keep_freed_memory sets
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
HEAP_BELOW = 32 << 20  # the most glibc accepts on 64-bit; every tensor of a training step here is smaller
TRIM_ABOVE = 1 << 30
KEEP_FREED_MEMORY = "INFOGAN_KEEP_FREED_MEMORY"  # "0": leave malloc as it is


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


def keep_freed_memory(environ: Mapping[str, str] = os.environ) -> bool:
    """Have glibc's malloc keep the memory that freed tensors leave for the next iteration's, where by
    default it gives much of it back to the kernel and takes it again, one page fault a page, every
    iteration. True when set (Linux with glibc, and INFOGAN_KEEP_FREED_MEMORY is not "0").

    PyTorch's CPU tensors come from malloc. By default glibc maps each allocation over a threshold
    that follows the largest freed so far afresh, and hands the free top of its heap back to the
    kernel once it exceeds twice that threshold; either way the next iteration's tensors fault
    their pages in again, each zeroed by the kernel. With the threshold fixed at 32 MiB and the trim
    at 1 GiB, a training step reuses its memory: the train stage faults a tenth as many pages (about
    10,000 fewer an iteration here) and runs a few percent faster. It changes no number a run
    computes (docs/benchmarks.md, benchmarks/freed_memory.py)."""
    if environ.get(KEEP_FREED_MEMORY, "1") == "0" or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the process's own C library
    return bool(libc.mallopt(M_MMAP_THRESHOLD, HEAP_BELOW)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_ABOVE))
