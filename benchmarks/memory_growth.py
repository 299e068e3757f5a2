"""Does training memory grow with the number of steps? The train stage's peak memory, short run vs long run.

    python benchmarks/memory_growth.py --data data/prepared/mnist --epochs 2 --factor 10

Runs the train stage (`python -m pipeline.train`, with everything it does: MLflow logging, the
per-epoch evaluation, sample snapshots) twice, each in a fresh process: once for --epochs epochs
and once for --factor times as many, with the params file otherwise unchanged. Their models,
history, MLflow store and artifacts go to a scratch folder. Prints each run's iterations, wall
time and peak resident memory (the process's ru_maxrss, and the `system/peak_rss_mib` the stage
logged to MLflow at its last epoch), then the ratio long/short. Anything kept per step (a loss
tensor with its graph, a growing list) shows as a ratio above 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from pipeline.stage import train_command

LIMIT = 1.10  # the long run may peak at most 10% above the short one


def run_train_stage(
    params: dict, dataset: str, data: Path, folder: Path, uri: str, env: dict[str, str] | None = None
) -> tuple[float, resource.struct_rusage]:
    """Run the train stage with `params` in a fresh child process, its outputs and train.log in
    `folder`, tracked at `uri`, with `env`'s variables added to this process's environment; return
    its wall seconds and resource usage (wait4's: the child's own). Exits with the log's end if it fails."""
    params_file = folder / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    cmd = train_command(dataset, params_file, data, folder)
    env = {**os.environ, **(env or {}), "MLFLOW_TRACKING_URI": uri}
    log = folder / "train.log"
    start = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own resource usage
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        sys.exit(f"the training in {folder} failed:\n{log.read_text()[-3000:]}")
    return seconds, usage


def train_peak_rss(params: dict, dataset: str, data: Path, scratch: Path, name: str) -> tuple[float, float, float]:
    """Run the train stage with `params` in a child process; return (wall s, peak RSS MiB, the peak
    RSS MiB it logged to MLflow)."""
    folder = scratch / name
    folder.mkdir()
    uri = f"sqlite:///{scratch / 'mlflow.db'}"
    seconds, usage = run_train_stage(params, dataset, data, folder, uri)
    run_id = json.loads((folder / "model" / "run.json").read_text())["run_id"]
    logged = MlflowClient(uri).get_run(run_id).data.metrics["system/peak_rss_mib"]
    return seconds, usage.ru_maxrss / 1024, logged  # Linux reports KiB


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data", type=Path, default=Path("data/prepared/mnist"), help="the prepare stage's output")
    p.add_argument("--epochs", type=int, default=2, help="epochs of the short run")
    p.add_argument("--factor", type=int, default=10, help="the long run trains this many times longer")
    args = p.parse_args()
    if args.epochs < 1 or args.factor < 2:
        p.error("need --epochs >= 1 and --factor >= 2")
    if not (args.data / "train.pt").is_file():
        p.error(f"{args.data} holds no prepared split; run `dvc repro prepare@{args.dataset}` first")

    params = yaml.safe_load(args.params.read_text())
    per_epoch = params["train"]["batches_per_epoch"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, epochs in (("short", args.epochs), ("long", args.epochs * args.factor)):
            run_params = {
                **params,
                "train": {**params["train"], "max_epochs": epochs},
                "tracking": {**params["tracking"], "artifact_root": str(Path(tmp) / "mlartifacts")},
            }
            seconds, peak, logged = train_peak_rss(run_params, args.dataset, args.data, Path(tmp), name)
            rows.append((name, epochs, seconds, peak))
            print(
                f"{name:5s} {epochs:4d} epochs {epochs * per_epoch:6d} iterations {seconds:7.1f} s   "
                f"peak RSS {peak:7.0f} MiB   in MLflow {logged:7.0f} MiB",
                flush=True,
            )
    ratio = rows[1][3] / rows[0][3]
    verdict = "within" if ratio <= LIMIT else "ABOVE"
    print(f"peak RSS long / short: {ratio:.3f}x ({verdict} the {LIMIT:.2f}x limit)")
    sys.exit(0 if ratio <= LIMIT else 1)


if __name__ == "__main__":
    main()
