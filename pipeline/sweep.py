"""Seed sweep: train one recipe on several seeds, render each, and report each seed, the mean and the minimum.

    python -m pipeline.sweep --dataset mnist --data data/prepared/mnist --seeds 0 1 2 \
        [--set train.recipe=improved improved.real_consistency=0]

Runs the train stage and then the render stage once per seed, each in its own process, with
params.yaml as it is except `train.seed` and the `--set` overrides (dotted keys that params.yaml
has, YAML values, as in `dvc exp run -S`). `--jobs N` runs N seeds at once, each with 1/N of the
CPU cores. Each seed's model, history and checkpoints go to <out>/seed_<s>/, and render writes its
GIFs and sheets into <out>/seed_<s>/media and its metrics into <out>/seed_<s>/metrics.json, and
logs them into the seed's MLflow run (in the experiment `infogan-<dataset>`, tagged `seed_sweep`
with this sweep's id), as `dvc repro` does. The checkpoint evaluated is the last one: nothing is
picked by looking at labels. Rerun after an interruption, with the same arguments: each unfinished
seed resumes from <out>/seed_<s>/checkpoints.

Writes --table (CSV: one row per seed, then `mean` and `min`) and prints it. A row holds the first
categorical code's accuracy, NMI and MI bound; the generated digits' purity and how many distinct
digits are drawn; each continuous code's |Spearman rho| with slant, width and thickness and the name
render gave its GIF; and the train and render wall times. Not a DVC stage: `dvc repro` trains one
seed; this is for measuring a recipe's robustness.
"""

from __future__ import annotations

import json
import math
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
from infogan.evaluation.factors import PROPERTIES, change_key, correlation_key
from infogan.evaluation.history import last_iteration, read_history
from pipeline import tracking
from pipeline.params import parse_params, read_params, with_overrides
from pipeline.stage import entry_point, parser, prepared_manifest, render_command, train_command

# render's metrics that make a row, in order: the first categorical code against the labels, and the
# digits the generator draws (MNIST and SVHN); then each continuous code's columns (seed_row)
METRIC_COLUMNS = (
    "eval/categorical_accuracy",
    "eval/categorical_nmi",
    "info_bound/categorical_0",
    "generated/purity_mean",
    "generated/distinct_digits",
)


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
    """One seed's train stage and then its render stage, each in its own process, their output in
    <folder>/train.log and <folder>/render.log."""

    def __init__(self, params: dict, seed: int, args, folder: Path, threads: int | None):
        folder.mkdir(parents=True, exist_ok=True)
        seeded = {**params, "train": {**params["train"], "seed": seed}}
        (folder / "params.yaml").write_text(yaml.safe_dump(seeded, sort_keys=False))
        self.env = dict(os.environ)
        if threads is not None:  # parallel seeds share the cores instead of each taking all of them
            self.env["OMP_NUM_THREADS"] = str(threads)
        self.seed, self.folder = seed, folder
        self.steps = [
            ("train", train_command(args.dataset, folder / "params.yaml", args.data, folder)),
            ("render", render_command(args.dataset, folder / "params.yaml", args.data, folder)),
        ]
        self.walls: dict[str, float] = {}
        self._start_next()

    def _start_next(self) -> None:
        self.step, command = self.steps[len(self.walls)]
        self.log = (self.folder / f"{self.step}.log").open("w")
        self.start = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)

    def finished(self) -> dict[str, float] | None:
        """None while training or rendering; then each step's wall time in seconds, or an error with
        the failed step's log's end."""
        code = self.process.poll()
        if code is None:
            return None
        self.log.close()
        if code != 0:
            log = self.folder / f"{self.step}.log"
            tail = log.read_text()[-2000:]
            raise InfoGANError(f"{self.step} of seed {self.seed} failed (exit {code}); the end of {log}:\n{tail}")
        self.walls[self.step] = time.perf_counter() - self.start
        if len(self.walls) < len(self.steps):
            self._start_next()
            return None
        return self.walls

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def run_seeds(params: dict, seeds: list[int], args, out: Path, jobs: int) -> Iterator[tuple[int, Path, dict]]:
    """Train and render every seed, at most `jobs` at a time; yield (seed, its folder, {step: wall
    seconds}) as each finishes.
    If anything goes wrong here or in the caller (Ctrl-C, SIGTERM via main's handler), every
    training still running is stopped: no orphan keeps training."""
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 and "OMP_NUM_THREADS" not in os.environ else None
    pending, running = list(seeds), []
    try:
        while pending or running:
            # seeds may start together: creating the MLflow store and experiment is locked (tracking.store_lock)
            if pending and len(running) < jobs:
                seed = pending.pop(0)
                print(f"[{len(seeds) - len(pending)}/{len(seeds)}] training and rendering seed {seed} ...", flush=True)
                running.append(SeedRun(params, seed, args, out / f"seed_{seed}", threads))
                continue
            for run in list(running):
                walls = run.finished()
                if walls is not None:
                    running.remove(run)
                    yield run.seed, run.folder, walls
            time.sleep(0.5)
    finally:
        for run in running:
            run.stop()


def seed_row(seed: int, metrics: dict[str, float], tags: dict[str, str], walls: dict[str, float]) -> dict:
    """One seed's row: render's metrics, each continuous code's |rho| with every measured property, how
    far it moves each (degrees or pixels over its prior's range), and the name render gave its GIF
    (blank: none; render tags the run `factor/continuous_<j>` with it, or `unclear`), and the train
    and render wall times."""
    row: dict = {"seed": seed, **{key: metrics[key] for key in METRIC_COLUMNS if key in metrics}}
    n_continuous = sum(1 for key in metrics if key.startswith("info_bound/continuous_"))
    if any(key.startswith("factor/") for key in metrics):  # digits: what each continuous code controls
        names = {code: tags.get(f"factor/continuous_{code}", "unclear") for code in range(n_continuous)}
        for code in range(n_continuous):
            for prop in PROPERTIES:
                row[f"continuous_{code}/abs_rho_{prop}"] = abs(metrics.get(correlation_key(code, prop), math.nan))
            for prop in PROPERTIES:
                row[f"continuous_{code}/change_{prop}"] = metrics.get(change_key(code, prop), math.nan)
            row[f"continuous_{code}/name"] = "" if names[code] == "unclear" else names[code]
    return {**row, "train_s": walls["train"], "render_s": walls["render"]}


def summarise(rows: list[dict]) -> pd.DataFrame:
    """The per-seed rows, then the mean and the minimum over seeds of every numeric column."""
    table = pd.DataFrame(rows)
    numeric = table.drop(columns="seed").select_dtypes("number")
    summary = pd.DataFrame([{"seed": "mean", **numeric.mean().to_dict()}, {"seed": "min", **numeric.min().to_dict()}])
    return pd.concat([table, summary], ignore_index=True)


def printable(table: pd.DataFrame) -> str:
    """The table for a terminal: short headers, names without their blanks."""
    shown = table.drop(columns=["run_id"]).fillna("")
    shown.columns = [
        column.replace("continuous_", "cont").replace("abs_rho_", "|rho| ").replace("change_", "change ")
        for column in shown.columns
    ]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")


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
    load_split(args.data / "test.pt")  # checked before the first hour of training, not after
    load_split(args.data / "train.pt")
    prepared_manifest(args.data)
    out = args.out or Path("sweeps") / dataset.name
    table_path = args.table or Path("reports") / dataset.name / "seed_sweep.csv"
    sweep_id = uuid.uuid4().hex[:12]
    client = tracking.client_for(tracking.tracking_uri(checked.tracking))

    rows = []
    for seed, folder, walls in run_seeds(params, args.seeds, args, out, args.jobs):
        metrics = json.loads((folder / "metrics.json").read_text())  # render's, which its run holds too
        run_id = json.loads((folder / "model" / "run.json").read_text())["run_id"]
        client.set_tag(run_id, "seed_sweep", sweep_id)
        if args.set:
            client.set_tag(run_id, "seed_sweep_overrides", " ".join(args.set))
        step = last_iteration(read_history(folder / "history.csv"))  # beside render's values
        tracking.log_metrics(client, run_id, {"wall_s": walls["train"], "render_s": walls["render"]}, step=step)
        row = seed_row(seed, metrics, client.get_run(run_id).data.tags, walls)
        rows.append({**row, "run_id": run_id})
        names = {key.removesuffix("/name"): name for key, name in row.items() if key.endswith("/name") and name}
        named = ", ".join(f"{code} {name}" for code, name in names.items())
        print(
            f"      seed {seed}: accuracy {metrics['eval/categorical_accuracy']:.4f}, "
            f"NMI {metrics['eval/categorical_nmi']:.4f}, named continuous codes: {named or 'none'}; "
            f"train {walls['train']:.0f} s, render {walls['render']:.0f} s",
            flush=True,
        )

    rows.sort(key=lambda row: args.seeds.index(row["seed"]))  # parallel seeds finish in any order
    table = summarise(rows)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False)
    print(f"seed sweep {sweep_id} ({len(rows)} seeds), written to {table_path}:")
    print(printable(table))


if __name__ == "__main__":
    main()
