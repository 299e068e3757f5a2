"""What the train stage's parts around the step cost: the improved recipe trained in Lightning with
the neighbour pairs, the weights' moving average and the per-epoch evaluation added one at a time,
and the moving average as Lightning's EMAWeightAveraging updates it by itself (two temporary copies
of each tensor) beside WeightAverage's one in-place lerp, and one per-epoch evaluation in fp32 and
in the training steps' bf16 autocast (where the CPU has bf16), which `EpochEvaluation` runs in.

    python benchmarks/train_overhead.py --data data/prepared/mnist --threads 2
    python benchmarks/train_overhead.py --data data/prepared/mnist --threads 2 \
        --set improved.augmented_information_rows=64

Each setting trains `--epochs` epochs of `--batches-per-epoch` iterations of params.yaml's improved
recipe (with `--set`'s changes, as `pipeline.sweep --set` makes them) from the same seed on the
prepared MNIST folder (its neighbour table included), with no logger, checkpoint or snapshot, and
prints images/s from iteration `--skip` to the end (epoch ends, and so the evaluations, included).
The settings are alternated `--repeats` times. Set beside the train stage's own images/s (its log
lines), the last row leaves what MLflow logging, checkpoints and snapshots cost. `--repeats 0`
times the average's update and the evaluation alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EMAWeightAveraging

from infogan.config import TrainingConfig
from infogan.data.neighbours import load_neighbours
from infogan.errors import InfoGANError
from infogan.evaluation.metrics import categorical_code_matching
from infogan.training.callbacks import EpochEvaluation, WeightAverage
from infogan.training.datamodule import DeviceImages
from infogan.training.hardware import resolve_precision
from infogan.training.module import InfoGANTraining
from pipeline.params import parse_params, shipped_params
from pipeline.sweep import apply_overrides

DECAY = 0.995  # the moving average's decay in round 11's recipe (improved.ema_decay; the shipped default is 0, off)
AVERAGES = {  # the moving average's update: WeightAverage's one lerp, or Lightning's own EMA callback's
    "lerp": WeightAverage,
    "lightning": lambda decay: EMAWeightAveraging(decay=decay),
}
SETTINGS = {  # name: (neighbour pairs, moving average: None or an AVERAGES key, per-epoch evaluation)
    "step alone": (False, None, False),
    "+ neighbour pairs": (True, None, False),
    "+ moving average": (True, "lerp", False),
    "  (Lightning's update)": (True, "lightning", False),
    "+ per-epoch evaluation": (True, "lerp", True),
}


class BatchTimes(pl.Callback):
    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, *args) -> None:
        self.ends.append(time.perf_counter())


def images_per_second(
    config: TrainingConfig,
    splits: dict,
    table: torch.Tensor,
    setting: tuple[bool, str | None, bool],
    args: argparse.Namespace,
) -> float:
    pairs, averaged, evaluated = setting
    train, test, batch = splits["train"], splits["test"], args.batch_size
    neighbours = config.improved.neighbours if pairs else 0
    pl.seed_everything(0, verbose=False)
    module = InfoGANTraining(config.model, config.train, config.improved)
    times = BatchTimes()
    average = AVERAGES[averaged](DECAY) if averaged else None
    callbacks: list[pl.Callback] = [times, *([average] if average else [])]
    if evaluated:  # reads the average's networks: a WeightAverage (the "lerp" settings)
        callbacks.append(EpochEvaluation(test["images"], test["labels"], config.train.eval_batch_size, average))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        precision=resolve_precision("auto", "cpu"),
        max_epochs=args.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    pairs_table = table if neighbours else None
    trainer.fit(
        module, datamodule=DeviceImages(train["images"], batch, args.batches_per_epoch, 0, neighbours, pairs_table)
    )
    ends = times.ends[args.skip - 1 :]
    return batch * (len(ends) - 1) / (ends[-1] - ends[0])


def update_milliseconds(config: TrainingConfig, updates: int) -> tuple[dict[str, float], int]:
    """One update of the moving average of the improved recipe's training module, each of AVERAGES's
    callbacks in turn: milliseconds per update for each, and the weights averaged. Each callback
    builds its average as at the start of a fit (Lightning's `setup`) and is timed on its own update."""
    module = InfoGANTraining(config.model, config.train, config.improved)
    averages = {}
    for kind, make in AVERAGES.items():
        callback = make(DECAY)
        callback.setup(None, module, "fit")  # builds the AveragedModel; the trainer is not read
        averages[kind] = callback._average_model  # Lightning's AveragedModel, as WeightAverage.networks reads it
    seconds = dict.fromkeys(averages, 0.0)
    for average in averages.values():
        average.update_parameters(module)  # the first update copies
    for _ in range(updates):
        for kind, average in averages.items():
            start = time.perf_counter()
            average.update_parameters(module)
            seconds[kind] += time.perf_counter() - start
    weights = sum(weight.numel() for weight in module.parameters())
    return {kind: 1000 * total / updates for kind, total in seconds.items()}, weights


def evaluation_seconds(config: TrainingConfig, test: dict[str, torch.Tensor], calls: int) -> dict[str, float]:
    """One `categorical_code_matching` of the test split by the improved recipe's networks (random
    weights: the arithmetic is the same), in fp32 and under bf16 autocast where the CPU has bf16,
    alternated `calls` times: the fastest call's seconds for each."""
    model = InfoGANTraining(config.model, config.train, config.improved).model
    kinds = {"fp32": False, **({"bf16": True} if resolve_precision("auto", "cpu") == "bf16-mixed" else {})}
    fastest = dict.fromkeys(kinds, float("inf"))
    for _ in range(calls):
        for kind, bf16 in kinds.items():
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                categorical_code_matching(model, test["images"], test["labels"], config.train.eval_batch_size)
            fastest[kind] = min(fastest[kind], time.perf_counter() - start)
    return fastest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/prepared/mnist"), help="prepare's MNIST folder")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches-per-epoch", type=int, default=100)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--skip", type=int, default=20, help="iterations of warm-up left out of the rate")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--updates", type=int, default=50, help="updates of the average timed on their own")
    p.add_argument(
        "--evaluations", type=int, default=3, help="per-epoch evaluations timed on their own, each precision"
    )
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="params overrides, as pipeline.sweep's")
    args = p.parse_args()
    try:
        config = parse_params(apply_overrides(shipped_params({"train.recipe": "improved"}), args.set)).training("mnist")
    except InfoGANError as err:
        p.error(str(err))
    torch.set_num_threads(args.threads)
    splits = {split: torch.load(args.data / f"{split}.pt", weights_only=True) for split in ("train", "test")}
    table = load_neighbours(args.data, config.improved.neighbours, len(splits["train"]["images"]))
    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.repeats):
        for name, setting in SETTINGS.items():
            rates[name].append(images_per_second(config, splits, table, setting, args))
    if args.repeats > 0:
        print(f"{args.threads} threads, batch {args.batch_size}, {args.epochs} x {args.batches_per_epoch} iterations")
        if args.set:
            print("with " + " ".join(args.set))
        for name, found in rates.items():
            print(f"{name:24s} " + "  ".join(f"{rate:6.0f}" for rate in found) + " images/s")
    else:
        print(f"{args.threads} threads")
    update, weights = update_milliseconds(config, args.updates)
    print(
        f"one update of the average of {weights / 1e6:.1f} M weights: lerp {update['lerp']:.1f} ms, "
        f"Lightning's {update['lightning']:.1f} ms ({update['lightning'] / update['lerp']:.2f}x)"
    )
    evaluation = evaluation_seconds(config, splits["test"], args.evaluations)
    images = len(splits["test"]["images"])
    print(f"one evaluation of {images:,} test images: " + ", ".join(f"{k} {v:.2f} s" for k, v in evaluation.items()))


if __name__ == "__main__":
    main()
