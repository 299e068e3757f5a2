"""Seed sweep: train one recipe on several seeds and report each seed, the mean and the minimum.

    python -m pipeline.sweep --dataset mnist --data data/prepared/mnist --seeds 0 1 2 \
        [--set train.recipe=improved improved.real_consistency=0]

Runs the train stage once per seed, each in its own process, with params.yaml as it is except
`train.seed` and the `--set` overrides (dotted keys that params.yaml has, YAML values, as in
`dvc exp run -S`). `--jobs N` trains N seeds at once, each with 1/N of the CPU cores. Each
seed's model goes to <out>/seed_<s>/ and its MLflow run (in the experiment `infogan-<dataset>`,
tagged `seed_sweep` with this sweep's id) gets the evaluation metrics too.
The checkpoint evaluated is the last one: nothing is picked by looking at labels. Rerun after an
interruption, with the same arguments, each unfinished seed resumes from <out>/seed_<s>/checkpoints. Writes --table
(CSV: one row per seed, then `mean` and `min`) and prints it. Not a DVC stage: `dvc repro` trains
one seed; this is for measuring a recipe's robustness.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import yaml

from infogan.atomic import atomic_path
from infogan.data.images import load_split
from infogan.data.registry import find_dataset
from infogan.errors import InfoGANError
from infogan.evaluation.history import last_iteration, read_history
from infogan.evaluation.registry import Evaluation, evaluate
from infogan.model.load import load_model
from pipeline import tracking
from pipeline.params import parse_params, read_params, with_overrides
from pipeline.stage import entry_point, parser, prepared_manifest, train_command

COLUMNS = ("eval/categorical_accuracy", "eval/categorical_nmi", "info_bound/categorical_0", "wall_s")


def apply_overrides(params: dict, overrides: list[str]) -> dict:
    """A copy of params with each `dotted.key=value` applied; the key must already exist."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InfoGANError(f"--set {item!r} must look like dotted.key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise InfoGANError(f"--set {item!r}: the value is not valid YAML ({err})") from None
        try:
            params = with_overrides(params, {key: value})
        except InfoGANError as err:
            raise InfoGANError(f"--set {item!r}: {err}") from None
    return params


class SeedRun:
    """One seed's train stage, running in its own process with its output in <folder>/train.log."""

    def __init__(self, params: dict, seed: int, args, folder: Path, threads: int | None):
        folder.mkdir(parents=True, exist_ok=True)
        seeded = {**params, "train": {**params["train"], "seed": seed}}
        (folder / "params.yaml").write_text(yaml.safe_dump(seeded, sort_keys=False))
        cmd = train_command(args.dataset, folder / "params.yaml", args.data, folder)
        env = dict(os.environ)
        if threads is not None:  # parallel seeds share the cores instead of each taking all of them
            env["OMP_NUM_THREADS"] = str(threads)
        self.seed, self.folder = seed, folder
        self.log = (folder / "train.log").open("w")
        self.start = time.perf_counter()
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def finished(self) -> float | None:
        """None while training; then its wall time in seconds, or an error with the log's end."""
        code = self.process.poll()
        if code is None:
            return None
        self.log.close()
        if code != 0:
            tail = (self.folder / "train.log").read_text()[-2000:]
            raise InfoGANError(
                f"training seed {self.seed} failed (exit {code}); the end of {self.folder / 'train.log'}:\n{tail}"
            )
        return time.perf_counter() - self.start

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def train_seeds(params: dict, seeds: list[int], args, out: Path, jobs: int) -> Iterator[tuple[int, Path, float]]:
    """Train every seed, at most `jobs` at a time; yield (seed, its folder, wall seconds) as each finishes.
    If anything goes wrong here or in the caller (Ctrl-C, SIGTERM via main's handler), every
    training still running is stopped: no orphan keeps training."""
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 and "OMP_NUM_THREADS" not in os.environ else None
    pending, running = list(seeds), []
    try:
        while pending or running:
            # seeds may start together: creating the MLflow store and experiment is locked (tracking.store_lock)
            if pending and len(running) < jobs:
                seed = pending.pop(0)
                print(f"[{len(seeds) - len(pending)}/{len(seeds)}] training seed {seed} ...", flush=True)
                running.append(SeedRun(params, seed, args, out / f"seed_{seed}", threads))
                continue
            for run in list(running):
                wall = run.finished()
                if wall is not None:
                    running.remove(run)
                    yield run.seed, run.folder, wall
            time.sleep(0.5)
    finally:
        for run in running:
            run.stop()


def summarise(rows: list[dict]) -> pd.DataFrame:
    """The per-seed rows, then their mean and minimum over seeds."""
    table = pd.DataFrame(rows)
    numeric = table[list(COLUMNS)]
    summary = pd.DataFrame([{"seed": "mean", **numeric.mean().to_dict()}, {"seed": "min", **numeric.min().to_dict()}])
    return pd.concat([table, summary], ignore_index=True)


@entry_point
def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=None, help="folder for each seed's model (default sweeps/<dataset>)")
    p.add_argument("--table", type=Path, default=None, help="CSV to write (default reports/<dataset>/seed_sweep.csv)")
    p.add_argument("--jobs", type=int, default=1, help="seeds trained at once, sharing the CPU cores (default 1)")
    p.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE", help="params overrides, e.g. train.recipe=improved"
    )
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # unwinds through train_seeds

    params = apply_overrides(read_params(args.params), args.set)  # as each seed's params.yaml will hold it
    dataset = find_dataset(args.dataset)
    checked = parse_params(params, dataset.name)  # every value checked before the first seed
    if not dataset.class_labels:
        raise InfoGANError(f"{dataset.name}'s labels are no classes to score a categorical code against")
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        raise InfoGANError(f"--seeds must be distinct non-negative integers, got {args.seeds}")
    if args.jobs < 1:
        raise InfoGANError(f"--jobs must be at least 1, got {args.jobs}")
    test_images, test_labels = load_split(args.data / "test.pt")
    load_split(args.data / "train.pt")  # checked before the first hour of training, not after
    manifest = prepared_manifest(args.data)
    out = args.out or Path("sweeps") / dataset.name
    table_path = args.table or Path("reports") / dataset.name / "seed_sweep.csv"
    sweep_id = uuid.uuid4().hex[:12]
    client = tracking.client_for(tracking.tracking_uri(checked.tracking))

    rows = []
    for seed, folder, wall in train_seeds(params, args.seeds, args, out, args.jobs):
        history = read_history(folder / "history.csv")
        model = load_model(folder / "model" / "model.ckpt")
        evaluation = Evaluation(model, checked.render, args.data, manifest, test_images, test_labels, history)
        metrics = evaluate(evaluation, ("information", "categorical_code"))  # as the render stage computes them
        run_id = json.loads((folder / "model" / "run.json").read_text())["run_id"]
        client.set_tag(run_id, "seed_sweep", sweep_id)
        if args.set:
            client.set_tag(run_id, "seed_sweep_overrides", " ".join(args.set))
        step = last_iteration(history)  # the latest values, as render's
        tracking.log_metrics(client, run_id, {**metrics, "wall_s": wall}, step=step)
        rows.append({"seed": seed, **{key: metrics[key] for key in COLUMNS[:-1]}, "wall_s": wall, "run_id": run_id})
        print(
            f"      seed {seed}: accuracy {metrics['eval/categorical_accuracy']:.4f}, "
            f"NMI {metrics['eval/categorical_nmi']:.4f}, {wall:.0f} s",
            flush=True,
        )

    rows.sort(key=lambda row: args.seeds.index(row["seed"]))  # parallel seeds finish in any order
    table = summarise(rows)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False)
    print(f"seed sweep {sweep_id} ({len(rows)} seeds), written to {table_path}:")
    print(table.drop(columns=["run_id"]).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
