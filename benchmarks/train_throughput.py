"""Training throughput: our InfoGAN training step against a straightforward Lightning baseline.

    python benchmarks/train_throughput.py --raw-dir data/raw/mnist --batch-size 128

Both train the same networks with the same losses on the same MNIST training images, in one
process, alternating A B A B ... so that machine noise hits both alike. The baseline is how typical
InfoGAN code trains: a torchvision MNIST Dataset with ToTensor/Normalize, a DataLoader, and a
module that draws fresh latents and runs G separately for D's loss and for G's loss. Ours is
`infogan.module.InfoGAN` fed by `infogan.data.train_loader`, as the train stage runs it.
Prints images/s for every run, the medians, their ratio, and the peak RSS of each run.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from infogan.config import ModelConfig, OptimConfig
from infogan.data import train_loader
from infogan.hardware import resolve_precision
from infogan.losses import discriminator_loss, generator_loss
from infogan.mnist import fetch_mnist, load_mnist_split
from infogan.module import InfoGAN


class BaselineInfoGAN(InfoGAN):
    """The usual step: G runs twice (fresh latents for D's loss and for G's loss); float batches."""

    def training_step(self, batch, batch_idx: int) -> None:
        real, _ = batch
        opt_d, opt_g = self.optimizers()
        kind = self.optim_config.adversarial_loss

        latent = self.codes.sample(real.shape[0], device=self.device)
        fake = self.generator(latent.vector).detach()
        self.toggle_optimizer(opt_d)
        fake_features = self.trunk(fake)
        d_loss = discriminator_loss(self.d_head(self.trunk(real)), self.d_head(fake_features), kind)
        d_loss = d_loss + self.weighted_information(self.information_loss(self.q_head(fake_features), latent))
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        latent = self.codes.sample(real.shape[0], device=self.device)
        fake = self.generator(latent.vector)
        self.toggle_optimizer(opt_g)
        features = self.trunk(fake)
        g_loss = generator_loss(self.d_head(features), kind)
        g_loss = g_loss + self.weighted_information(self.information_loss(self.q_head(features), latent))
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.log_dict({"loss/d": d_loss, "loss/g": g_loss}, on_step=True, on_epoch=True)


class StepTimer(pl.Callback):
    """Wall time from the end of the warm-up batches to the end of the last batch."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx + 1 == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def reset_peak_rss() -> None:
    gc.collect()  # free the previous run's modules first, so its memory is not counted here
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM to the current RSS
    except OSError:
        pass


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def torchvision_mnist(raw_dir: Path, root: Path) -> datasets.MNIST:
    """torchvision's MNIST over the same files (it reads them decompressed, from root/MNIST/raw)."""
    target = root / "MNIST" / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        with gzip.open(raw_dir / f"{name}.gz") as src, open(target / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    normalize = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    return datasets.MNIST(str(root), train=True, transform=normalize, download=False)


def measure(
    kind: str, loader: DataLoader, steps: int, warmup: int, seed: int, device: str, precision: str
) -> tuple[float, float]:
    """Train `steps` iterations; return (images/s after warm-up, peak RSS MiB)."""
    pl.seed_everything(seed, verbose=False)
    module = (BaselineInfoGAN if kind == "baseline" else InfoGAN)(ModelConfig(), OptimConfig())
    timer = StepTimer(warmup)
    trainer = pl.Trainer(
        accelerator=device, devices=1, precision=precision, max_steps=2 * steps, max_epochs=1, limit_train_batches=steps,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[timer],
    )
    reset_peak_rss()
    trainer.fit(module, loader)
    elapsed = timer.end - timer.start
    return (steps - warmup) * loader.batch_size / elapsed, peak_rss_mib()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, default=Path("data/raw/mnist"), help="the four MNIST .gz files")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=40, help="iterations per run, warm-up included")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="runs of each, alternated")
    p.add_argument("--accelerator", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="auto", help="of our step, as train.precision; the baseline runs fp32")
    args = p.parse_args()
    if not 0 < args.warmup < args.steps:
        p.error("need 0 < --warmup < --steps")
    args.precision = resolve_precision(args.precision, args.accelerator)

    fetch_mnist(args.raw_dir, [], progress=False)  # verifies the files; downloads nothing
    images, _ = load_mnist_split(args.raw_dir, "train")
    ours_loader = train_loader(images, args.batch_size, args.steps, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        baseline_loader = DataLoader(
            torchvision_mnist(args.raw_dir, Path(tmp)), batch_size=args.batch_size, shuffle=True, drop_last=True,
            generator=torch.Generator().manual_seed(0),
        )
        results: dict[str, list[tuple[float, float]]] = {"baseline": [], "ours": []}
        print(f"device {args.accelerator}, ours at precision {args.precision}, torch threads {torch.get_num_threads()}, batch {args.batch_size}, "
              f"{args.steps} iterations per run ({args.warmup} warm-up), {args.repeats} repeats, alternating")
        for repeat in range(args.repeats):
            for kind, loader in (("baseline", baseline_loader), ("ours", ours_loader)):
                precision = args.precision if kind == "ours" else "32-true"
                rate, rss = measure(kind, loader, args.steps, args.warmup, repeat, args.accelerator, precision)
                results[kind].append((rate, rss))
                print(f"  run {repeat + 1} {kind:8s} {rate:8.1f} images/s   peak RSS {rss:7.0f} MiB")

    medians = {kind: statistics.median(rate for rate, _ in runs) for kind, runs in results.items()}
    peaks = {kind: max(rss for _, rss in runs) for kind, runs in results.items()}
    for kind in ("baseline", "ours"):
        print(f"{kind:8s} median {medians[kind]:8.1f} images/s   peak RSS {peaks[kind]:7.0f} MiB")
    print(f"ratio ours / baseline: {medians['ours'] / medians['baseline']:.2f}x")


if __name__ == "__main__":
    main()
