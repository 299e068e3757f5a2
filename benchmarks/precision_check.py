"""Does bf16 autocast change what InfoGAN learns? Short training runs at each precision, same seed.

    python benchmarks/precision_check.py --raw-dir data/raw/mnist --epochs 10

Trains the default MNIST model for `--epochs` epochs of 100 iterations at batch 128 once per
precision, then prints each run's wall time, last-epoch losses and information terms, and the
categorical code accuracy on the 10,000 test images.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from infogan.callbacks import EpochEvaluation
from infogan.config import ModelConfig, OptimConfig
from infogan.data import DeviceImages
from infogan.mnist import fetch_mnist, load_mnist_split
from infogan.module import InfoGAN


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, default=Path("data/raw/mnist"), help="the four MNIST .gz files")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batches-per-epoch", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    p.add_argument("--accelerator", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()

    fetch_mnist(args.raw_dir, [], progress=False)  # verifies the files; downloads nothing
    train_images, _ = load_mnist_split(args.raw_dir, "train")
    test_images, test_labels = load_mnist_split(args.raw_dir, "test")
    rows = []
    for precision in args.precisions:
        pl.seed_everything(args.seed, verbose=False)
        module = InfoGAN(ModelConfig(), OptimConfig())
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
        trainer.fit(module, datamodule=DeviceImages(train_images, args.batch_size, args.batches_per_epoch, args.seed))
        rows.append((precision, time.perf_counter() - start, evaluation.history[-1]))

    keys = ("loss/d", "loss/g", "info/categorical", "info/continuous", "eval/categorical_accuracy")
    print(
        f"{args.epochs} epochs x {args.batches_per_epoch} iterations, batch {args.batch_size}, seed {args.seed}, "
        f"{args.accelerator}; last-epoch means"
    )
    print(f"{'precision':12s} {'wall s':>8s} " + " ".join(f"{k:>26s}" for k in keys))
    for precision, seconds, last in rows:
        print(f"{precision:12s} {seconds:8.1f} " + " ".join(f"{last[k]:26.4f}" for k in keys))


if __name__ == "__main__":
    main()
