"""Stage `train@<dataset>`: train InfoGAN with Lightning, tracked in one MLflow run.

    python -m pipeline.train --dataset mnist --data data/prepared/mnist --out models/mnist \
        --history reports/mnist/train_history.csv

Reads `model.<dataset>`, `train`, `improved` (used when `train.recipe` is improved) and `tracking`
from params.yaml, all checked before any work, and checks that the tracking store can be reached.
When the dataset's labels are classes (digits), the first categorical code is scored against them
after every epoch.
Writes to --out: model.ckpt (Lightning checkpoint), config.json (the resolved configuration) and
run.json (the MLflow run id, which render logs into). Writes the per-epoch history CSV (a DVC plot).

Resuming: every `train.checkpoint_every_n_steps` iterations the whole training state goes to
<checkpoints>/last.ckpt (infogan/training/checkpoint.py), a folder that is no stage output, so DVC leaves it alone. A
run started with that file present and the same configuration resumes from it, in the same MLflow
run, and ends with the same weights as an uninterrupted run. With a different configuration it
starts a new run and says so, keeping the old file as previous.ckpt. A finished run deletes
last.ckpt: there is nothing left to resume.

Several devices or nodes (`train.devices`, `train.num_nodes`, `train.strategy`) train with
Lightning's DDP. Lightning runs this same command once more for each further process on a node (or
a cluster's launcher, such as srun, starts them all), so everything before `fit` runs in every
process. Only global rank 0 opens the MLflow run, logs, writes the outputs and the checkpoints;
the others train their shards of the data and exit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl

from infogan.atomic import atomic_path, write_json
from infogan.config import ModelConfig
from infogan.data.dataset import Dataset
from infogan.data.images import load_split
from infogan.data.neighbours import FILE, load_neighbours
from infogan.data.registry import find_dataset
from infogan.errors import InfoGANError
from infogan.training.bookkeeping import NonFiniteLoss
from infogan.training.callbacks import EpochEvaluation, PeakMemory, ProgressLines, SampleSnapshots, WeightAverage
from infogan.training.checkpoint import (
    ResumableCheckpoint,
    fingerprint,
    resumable_checkpoint,
    save_atomically,
    training_identity,
)
from infogan.training.datamodule import DeviceImages
from infogan.training.hardware import keep_freed_memory, resolve_compile, resolve_precision
from infogan.training.module import InfoGANTraining
from infogan.training.trainer import build_trainer
from pipeline import tracking
from pipeline.params import load_params
from pipeline.stage import entry_point, parser
from pipeline.training_run import TrainingRun, training_run


def check_data_matches(images, model: ModelConfig, dataset: str) -> None:
    expected = (model.image_channels, model.image_size, model.image_size)
    if tuple(images.shape[1:]) != expected:
        raise InfoGANError(
            f"prepared {dataset} images are {tuple(images.shape[1:])} but model.{dataset} expects "
            f"{expected} (image_channels, image_size); fix params.yaml or rerun prepare"
        )


@entry_point
def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--out", type=Path, required=True, help="folder for model.ckpt, config.json, run.json")
    p.add_argument("--history", type=Path, required=True, help="per-epoch history CSV")
    p.add_argument("--checkpoints", type=Path, required=True, help="folder for the checkpoint a run resumes from")
    args = p.parse_args()
    keep_freed_memory()  # each iteration reuses the last one's memory instead of faulting it in again

    # the configuration, every value checked, and the tracking store, before the data is even read
    dataset = find_dataset(args.dataset)
    params = load_params(args.params, dataset.name)
    config = params.training(dataset.name)
    train = config.train
    uri = tracking.tracking_uri(params.tracking)
    tracking.check_reachable(uri)
    train_images, test_images, test_labels = load_training_data(args.data, config.model, dataset)

    pl.seed_everything(train.seed, workers=True)
    precision = resolve_precision(train.precision, train.accelerator)
    compile_networks = resolve_compile(train.compile, train.accelerator)
    module = InfoGANTraining(config.model, train, config.improved, compile_networks=compile_networks)
    # keyed as in params.yaml (model.<dataset> becomes model), so MLflow params read like -S overrides;
    # `precision` and `compile` are what ran, not "auto"
    resolved = {
        "dataset": dataset.name,
        "model": config.model.to_dict(),
        "train": {**train.to_dict(), "precision": precision, "compile": compile_networks},
    }
    if config.improved is not None:
        resolved["improved"] = config.improved.to_dict()
    manifest_sha256 = tracking.file_sha256(args.data / "manifest.json")
    identity = training_identity(resolved, manifest_sha256, uri)

    # the trainer, with the callbacks that evaluate, sample, measure memory and save the resumable state
    checkpoint_path = args.checkpoints / "last.ckpt"
    decay = module.improved.ema_decay if module.improved is not None else 0.0
    average = WeightAverage(decay) if decay > 0 else None  # what is evaluated, sampled and saved
    evaluation = EpochEvaluation(test_images, test_labels, train.eval_batch_size, average)
    record = {"fingerprint": fingerprint(identity), "identity": identity}
    checkpointing = ResumableCheckpoint(checkpoint_path, train.checkpoint_every_n_steps, record)
    # rank 0 only, once the run below is open
    snapshots = SampleSnapshots(
        lambda epoch, image: run.log_image(image, f"samples/epoch_{epoch:04d}.png"),
        train.sample_every_n_epochs,
        train.seed,
        average,
    )
    callbacks = [*([average] if average else []), evaluation, snapshots, PeakMemory(), checkpointing]
    terminal = sys.stdout.isatty()  # a live bar on a terminal; in a file, a pipe or CI, a line per epoch
    if not terminal:
        callbacks.append(ProgressLines(evaluation, train.batch_size))
    trainer = build_trainer(train, precision, callbacks, progress_bar=terminal)
    # each process knows its global rank once the Trainer exists; rank 0 alone reports
    resume = resumable_checkpoint(checkpoint_path, identity, trainer.is_global_zero)
    neighbours = module.improved.neighbours if module.improved is not None else 0
    stored = load_neighbours(args.data, neighbours, len(train_images)) if neighbours > 0 else None
    if neighbours > 0 and trainer.is_global_zero:
        table = args.data / FILE
        short = f"prepare.{dataset.name}.neighbours < {neighbours}"
        where = f"from {table}" if stored is not None else f"not in {table} ({short}): finding them"
        print(f"each training image's {neighbours} nearest training images: {where}", flush=True)
    data = DeviceImages(train_images, train.batch_size, train.batches_per_epoch, train.seed, neighbours, stored)

    tracked = training_run(trainer, params.tracking, dataset.name, resolved, manifest_sha256, resume, checkpoint_path)
    with tracked as run:
        if run is not None:
            checkpointing.metadata["run_id"] = run.run_id  # what a resumed run continues
        try:
            trainer.fit(module, datamodule=data, ckpt_path=checkpoint_path if resume is not None else None)
        except NonFiniteLoss as err:
            raise err.with_kept(last_checkpoint(checkpointing, resume)) from None
        # what render needs (resuming uses last.ckpt); every rank takes part in the save, rank 0 writes
        save_atomically(trainer, args.out / "model.ckpt", weights_only=True)
        if run is None:
            return
        write_outputs(args, resolved, run, dataset.name, evaluation.history)
        registered = run.log_generator(module.model, dataset.name, train.seed)
        if registered:
            print(f'the generator is MLflow model {registered} (README, "The generator as an MLflow model")')
        checkpoint_path.unlink(missing_ok=True)  # finished: nothing to resume
        if module.skipped_steps:
            skipped = f"skipped {module.skipped_steps} optimizer steps whose loss was NaN or infinite"
            print(f"{skipped} (train.on_nonfinite: skip)", flush=True)
        last = evaluation.history[-1] if evaluation.history else {}
        print(f"trained {dataset.name}: " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))


def last_checkpoint(checkpointing: ResumableCheckpoint, resume: dict | None) -> str:
    """What a run stopped by a non-finite loss leaves to resume from, in words: the checkpoint this
    run wrote last or resumed from, or none."""
    saved = checkpointing.saved_at[-1] if checkpointing.saved_at else resume and resume["iteration"]
    if saved and checkpointing.path.is_file():
        return f"the last checkpoint, written at iteration {saved}, is kept in {checkpointing.path}"
    return f"no checkpoint was written before it (train.checkpoint_every_n_steps is {checkpointing.every_n_steps})"


def load_training_data(folder: Path, model: ModelConfig, dataset: Dataset):
    """The prepared training images, and the test images and labels when the labels are classes (the
    first categorical code is scored against them after every epoch), else None for both."""
    train_images, _ = load_split(folder / "train.pt")
    test_images, test_labels = load_split(folder / "test.pt")
    check_data_matches(train_images, model, dataset.name)
    if not dataset.class_labels:  # nothing to score the categorical code against
        test_images = test_labels = None
    return train_images, test_images, test_labels


def write_outputs(args, resolved: dict, run: TrainingRun, dataset: str, history: list) -> None:
    """Write the stage's outputs besides model.ckpt, each atomically, and log them with the run."""
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(resolved, args.out / "config.json")
    write_json(
        {"run_id": run.run_id, "experiment": tracking.experiment_name(dataset), "tracking_uri": run.uri},
        args.out / "run.json",
    )
    with atomic_path(args.history) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    for path in (args.out / "model.ckpt", args.out / "config.json", args.history):
        run.log_artifact(path, "model" if path.parent == args.out else None)


if __name__ == "__main__":
    main()
