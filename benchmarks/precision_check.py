"""Does bf16 autocast change what InfoGAN learns? Short training runs at each precision, same seed.

    python benchmarks/precision_check.py --raw-dir data/raw/mnist --epochs 10

Trains the shipped recipe (params.yaml's MNIST model and `train` and `improved` sections; `--recipe`
picks the other) for `--epochs` epochs once per precision, then prints each run's wall time,
last-epoch losses and information terms, and the categorical code accuracy on the 10,000 test
images.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from infogan.data.mnist import fetch_mnist, load_mnist_split
from infogan.training.callbacks import EpochEvaluation
from infogan.training.datamodule import DeviceImages
from infogan.training.module import InfoGANTraining
from pipeline.params import parse_params, shipped_params


def main() -> None:
    shipped = parse_params(shipped_params()).training("mnist")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, default=Path("data/raw/mnist"), help="the four MNIST .gz files")
    p.add_argument("--recipe", choices=["paper", "improved"], default=shipped.train.recipe)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batches-per-epoch", type=int, default=shipped.train.batches_per_epoch)
    p.add_argument("--batch-size", type=int, default=shipped.train.batch_size)
    p.add_argument("--seed", type=int, default=shipped.train.seed)
    p.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    p.add_argument("--accelerator", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    config = parse_params(shipped_params({"train.recipe": args.recipe})).training("mnist")
    neighbours = config.improved_terms().neighbours if config.improved_terms() is not None else 0

    fetch_mnist(args.raw_dir, [], progress=False)  # verifies the files; downloads nothing
    train_images, _ = load_mnist_split(args.raw_dir, "train")
    test_images, test_labels = load_mnist_split(args.raw_dir, "test")
    rows = []
    for precision in args.precisions:
        pl.seed_everything(args.seed, verbose=False)
        module = InfoGANTraining(config.model, config.train, config.improved)
        evaluation = EpochEvaluation(test_images, test_labels)
        trainer = pl.Trainer(
            accelerator=args.accelerator,
            devices=1,
            precision=precision,
            max_epochs=args.epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[evaluation],
        )
        start = time.perf_counter()
        data = DeviceImages(train_images, args.batch_size, args.batches_per_epoch, args.seed, neighbours=neighbours)
        trainer.fit(module, datamodule=data)
        rows.append((precision, time.perf_counter() - start, evaluation.history[-1]))

    keys = ("loss/d", "loss/g", "info/categorical", "info/continuous", "eval/categorical_accuracy")
    print(
        f"recipe {args.recipe}, {args.epochs} epochs x {args.batches_per_epoch} iterations, batch {args.batch_size}, "
        f"seed {args.seed}, {args.accelerator}; last-epoch means"
    )
    print(f"{'precision':12s} {'wall s':>8s} " + " ".join(f"{k:>26s}" for k in keys))
    for precision, seconds, last in rows:
        print(f"{precision:12s} {seconds:8.1f} " + " ".join(f"{last[k]:26.4f}" for k in keys))


if __name__ == "__main__":
    main()
