"""What the train stage gains by keeping the memory freed tensors leave (keep_freed_memory in
infogan/training/hardware.py): the stage run in turn with glibc's malloc as it comes
(INFOGAN_KEEP_FREED_MEMORY=0) and as the stage sets it, on the same seed.

    python benchmarks/freed_memory.py --data data/prepared/mnist --threads 2
    python benchmarks/freed_memory.py --data data/prepared/mnist --threads 2 --epochs 3 \
        --set improved.ema_decay=0.995 improved.continuous_hessian_relative=0.03

Each run is `python -m pipeline.train` itself on params.yaml's improved recipe (with `--set`'s
changes, as `pipeline.sweep --set` makes them) for `--epochs` epochs of `--batches-per-epoch`
iterations, in a temporary folder with its own MLflow store. The two settings alternate
`--repeats` times. For each run it prints the training's images/s (the stage's last progress line:
the per-epoch evaluations included, startup and the model's registration not), its wall time, its
minor page faults (the whole process's, startup included) and its peak memory; then the medians'
ratio, and whether every run's history.csv is the same to the bit, as it must be: the setting
changes where memory comes from, not a number computed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: benchmarks/ is found from the root
from benchmarks.memory_growth import run_train_stage
from infogan.errors import InfoGANError
from infogan.training.hardware import KEEP_FREED_MEMORY
from pipeline.params import parse_params, shipped_params
from pipeline.sweep import apply_overrides

SETTINGS = {"as glibc comes": "0", "kept (the stage's)": "1"}
RATE = re.compile(r"iteration (\d+)/\1, (\d+) images/s")


def run(params: dict, data: Path, folder: Path, keep: str, threads: int) -> dict[str, float | bytes]:
    """One train stage in `folder`, with its own MLflow store: its iterations and images/s (its last
    progress line), wall seconds, minor page faults, peak resident memory (MiB) and history.csv's bytes."""
    folder.mkdir()
    env = {"OMP_NUM_THREADS": str(threads), "MLFLOW_DISABLE_TELEMETRY": "true", KEEP_FREED_MEMORY: keep}
    params = {**params, "tracking": {**params["tracking"], "artifact_root": str(folder / "mlartifacts")}}
    wall, usage = run_train_stage(params, "mnist", data, folder, f"sqlite:///{folder / 'mlflow.db'}", env)
    rates = RATE.findall((folder / "train.log").read_text())
    if not rates:
        sys.exit(f"error: no final progress line in {folder / 'train.log'}")
    return {
        "iterations": int(rates[-1][0]),
        "images/s": float(rates[-1][1]),
        "wall": wall,
        "faults": usage.ru_minflt,
        "peak": usage.ru_maxrss / 1024,  # Linux reports KiB
        "history": (folder / "history.csv").read_bytes(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/prepared/mnist"), help="the prepared MNIST folder")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--batches-per-epoch", type=int, default=100)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="params overrides, as pipeline.sweep's")
    args = p.parse_args()
    # after --set's, so that --epochs and --batches-per-epoch win
    changes = [f"train.max_epochs={args.epochs}", f"train.batches_per_epoch={args.batches_per_epoch}"]
    try:
        params = apply_overrides(shipped_params({"train.recipe": "improved"}), [*args.set, *changes])
        parse_params(params).training("mnist")
    except InfoGANError as err:
        p.error(str(err))
    runs: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, keep in SETTINGS.items():
                runs[name].append(run(params, args.data, Path(tmp) / f"{keep}-{repeat}", keep, args.threads))
    iterations = ", ".join(sorted({str(r["iterations"]) for found in runs.values() for r in found}))
    print(f"{args.threads} threads, {iterations} iterations of the train stage, each setting {args.repeats} times")
    if args.set:
        print("with " + " ".join(args.set))
    for name, found in runs.items():
        rows = ", ".join(
            f"{r['images/s']:.0f} images/s in {r['wall']:.0f} s, {r['faults'] / 1e6:.2f} M faults, {r['peak']:.0f} MiB"
            for r in found
        )
        print(f"{name:20s} {rows}")
    rate = {name: statistics.median(r["images/s"] for r in found) for name, found in runs.items()}
    faults = {name: statistics.median(r["faults"] for r in found) for name, found in runs.items()}
    base, kept = SETTINGS
    print(
        f"kept / as glibc comes: {rate[kept] / rate[base]:.3f}x images/s, "
        f"{faults[kept] / faults[base]:.2f}x page faults"
    )
    histories = {r["history"] for found in runs.values() for r in found}
    print("histories: " + ("identical" if len(histories) == 1 else f"{len(histories)} different"))


if __name__ == "__main__":
    main()
