"""Training throughput: our InfoGAN training step against a straightforward Lightning baseline.

    python benchmarks/train_throughput.py --raw-dir data/raw/mnist --batch-size 128

Both train the same networks with the same losses on the same MNIST training images, in one
process, alternating A B A B ... so that machine noise hits both alike. The baseline is how typical
InfoGAN code trains: a torchvision MNIST Dataset with ToTensor/Normalize, a DataLoader, and a
module that draws fresh latents and runs G separately for D's loss and for G's loss. Ours is
`infogan.training.module.InfoGANTraining` fed by `infogan.training.datamodule.DeviceImages`, as the train stage runs it.
Prints images/s for every run, the medians, their ratio, and the peak memory of each (RSS on
CPU, torch's max_memory_allocated on CUDA).

With --ladder it also runs the steps in between, each adding one of our choices to the one
before: batches drawn on the device, then one G forward per iteration (and logging off the hot
path), then the fused Adam, then ours (adding the precision, and on CUDA torch.compile, that
`auto` picks), and last ours with the other torch.compile choice. The medians then show what
each choice bought.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import gzip
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from infogan.data.images import to_model_range
from infogan.data.mnist import fetch_mnist, load_mnist_split
from infogan.model.losses import discriminator_loss, generator_loss
from infogan.training.datamodule import DeviceImages
from infogan.training.hardware import resolve_compile, resolve_precision
from infogan.training.module import InfoGANTraining
from pipeline.params import parse_params, shipped_params


class BaselineInfoGAN(InfoGANTraining):
    """The usual step: G runs twice (fresh latents for D's loss and for G's loss), torch.optim.Adam
    with its defaults, Lightning's per-step logging, no memory-format or compile choices."""

    def configure_optimizers(self):
        betas = (self.config.train.beta1, self.config.train.beta2)
        d_params = [*self.model.trunk.parameters(), *self.model.d_head.parameters(), *self.model.q_head.parameters()]
        opt_d = torch.optim.Adam(d_params, lr=self.config.train.lr_d, betas=betas)
        opt_g = torch.optim.Adam(self.model.generator.parameters(), lr=self.config.train.lr_g, betas=betas)
        return opt_d, opt_g

    def on_fit_start(self) -> None:
        pass

    def training_step(self, batch, batch_idx: int) -> None:
        # (images, labels) in [-1, 1] from the torchvision loader; uint8 images from DeviceImages (--ladder)
        real = to_model_range(batch) if isinstance(batch, torch.Tensor) else batch[0]
        opt_d, opt_g = self.optimizers()
        kind = self.config.train.adversarial_loss

        latent = self.model.codes.sample(real.shape[0], device=self.device)
        fake = self.model.generator(latent.vector).detach()
        self.toggle_optimizer(opt_d)
        fake_features = self.model.trunk(fake)
        d_loss = discriminator_loss(self.model.d_head(self.model.trunk(real)), self.model.d_head(fake_features), kind)
        d_loss = d_loss + self.weighted_information(self.information_loss(self.model.q_head(fake_features), latent))
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        latent = self.model.codes.sample(real.shape[0], device=self.device)
        fake = self.model.generator(latent.vector)
        self.toggle_optimizer(opt_g)
        features = self.model.trunk(fake)
        g_loss = generator_loss(self.model.d_head(features), kind)
        g_loss = g_loss + self.weighted_information(self.information_loss(self.model.q_head(features), latent))
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.log_dict({"loss/d": d_loss, "loss/g": g_loss}, on_step=True, on_epoch=True)


class UnfusedInfoGAN(InfoGANTraining):
    """Our step with torch.optim.Adam's defaults instead of the fused Adam (for --ladder)."""

    configure_optimizers = BaselineInfoGAN.configure_optimizers


class StepTimer(pl.Callback):
    """Wall time from the end of the warm-up batches to the end of the last batch (waiting for the GPU)."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx + 1 == self.warmup:
            synchronize(pl_module.device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        synchronize(pl_module.device)
        self.end = time.perf_counter()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: str) -> None:
    gc.collect()  # free the previous run's modules first, so its memory is not counted here
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return
    with contextlib.suppress(OSError):  # Linux only
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def peak_memory_mib(device: str) -> float:
    """CUDA: the most memory torch allocated; CPU: the peak resident set size (VmHWM)."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return platform.machine()


def torchvision_mnist(raw_dir: Path, root: Path) -> datasets.MNIST:
    """torchvision's MNIST over the same files (it reads them decompressed, from root/MNIST/raw)."""
    target = root / "MNIST" / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        with gzip.open(raw_dir / f"{name}.gz") as src, open(target / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    normalize = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    return datasets.MNIST(str(root), train=True, transform=normalize, download=False)


@dataclass(frozen=True)
class Arm:
    """One way of training: which module, fed by which data, at which precision."""

    name: str
    module: type[InfoGANTraining]
    device_data: bool  # DeviceImages; else the torchvision Dataset and DataLoader
    precision: str
    compile_networks: bool = False
    recipe: str = "paper"  # train.recipe; "improved" adds its terms (infogan/training/module.py)


def arms(ladder: bool, precision: str, compile_networks: bool, improved: bool = False) -> list[Arm]:
    """baseline and ours (and ours with the improved recipe); with `ladder`, the steps between
    baseline and ours, each adding one choice to the last."""
    ours = Arm("ours", InfoGANTraining, True, precision, compile_networks)
    baseline = Arm("baseline", BaselineInfoGAN, False, "32-true")
    if not ladder:
        return [baseline, ours] + (
            [Arm("improved", InfoGANTraining, True, precision, compile_networks, "improved")] if improved else []
        )
    return [
        baseline,
        Arm("+device", BaselineInfoGAN, True, "32-true"),  # batches indexed on the device, no DataLoader
        Arm("+1xG", UnfusedInfoGAN, True, "32-true"),  # one G forward, logging off the hot path
        Arm("+fused", InfoGANTraining, True, "32-true"),  # fused Adam
        ours,  # + the precision (and on CUDA torch.compile) that `auto` picks
        # ours with the other torch.compile choice, to show that `compile: auto` picks the faster
        Arm("eager" if compile_networks else "compiled", InfoGANTraining, True, precision, not compile_networks),
    ]


def module_for(arm: Arm) -> InfoGANTraining:
    """The arm's module, from params.yaml's MNIST model and the arm's recipe with its params.yaml
    settings, as the train stage builds it. The improved arm's batches carry no neighbour partners:
    a partner only replaces the image T is applied to, so Q's work is the same."""
    config = parse_params(shipped_params({"train.recipe": arm.recipe})).training("mnist")
    return arm.module(config.model, config.train, config.improved, compile_networks=arm.compile_networks)


def measure(
    arm: Arm, data: DataLoader | DeviceImages, batch_size: int, steps: int, warmup: int, seed: int, device: str
) -> tuple[float, float]:
    """Train `steps` iterations; return (images/s after warm-up, peak memory MiB: RSS, or CUDA allocated)."""
    pl.seed_everything(seed, verbose=False)
    module = module_for(arm)
    timer = StepTimer(warmup)
    trainer = pl.Trainer(
        accelerator=device,
        devices=1,
        precision=arm.precision,
        max_steps=2 * steps,
        max_epochs=1,
        limit_train_batches=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    reset_peak_memory(device)
    if isinstance(data, DeviceImages):
        trainer.fit(module, datamodule=data)
    else:
        trainer.fit(module, data)
    elapsed = timer.end - timer.start
    return (steps - warmup) * batch_size / elapsed, peak_memory_mib(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, default=Path("data/raw/mnist"), help="the four MNIST .gz files")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=40, help="iterations per run, warm-up included")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="runs of each, alternated")
    p.add_argument("--accelerator", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="auto", help="of our step, as train.precision; the baseline runs fp32")
    p.add_argument("--compile", default="auto", choices=["auto", "true", "false"], help="of our step, as train.compile")
    p.add_argument(
        "--ladder",
        action="store_true",
        help="also run the steps from baseline to ours, adding one choice at a time, to show what each buys",
    )
    p.add_argument(
        "--improved",
        action="store_true",
        help="also run ours with train.recipe: improved (params.yaml's terms), and print its cost",
    )
    p.add_argument(
        "--baseline-workers",
        type=int,
        default=None,
        help="DataLoader workers of the baseline (default: 0 on CPU, where workers take the cores the "
        "step needs; 4 with pinned memory on CUDA, as GPU training scripts usually set)",
    )
    args = p.parse_args()
    if not 0 < args.warmup < args.steps:
        p.error("need 0 < --warmup < --steps")
    precision = resolve_precision(args.precision, args.accelerator)
    compile_networks = resolve_compile({"true": True, "false": False}.get(args.compile, "auto"), args.accelerator)
    cuda = args.accelerator == "cuda"
    workers = args.baseline_workers if args.baseline_workers is not None else (4 if cuda else 0)
    memory = "peak CUDA" if cuda else "peak RSS"

    fetch_mnist(args.raw_dir, [], progress=False)  # verifies the files; downloads nothing
    images, _ = load_mnist_split(args.raw_dir, "train")
    device_data = DeviceImages(images, args.batch_size, args.steps, seed=0)
    if args.ladder and args.improved:
        p.error("--improved and --ladder are separate runs")
    order = arms(args.ladder, precision, compile_networks, args.improved)
    with tempfile.TemporaryDirectory() as tmp:
        loader = DataLoader(
            torchvision_mnist(args.raw_dir, Path(tmp)),
            batch_size=args.batch_size,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(0),
            num_workers=workers,
            pin_memory=cuda,
            persistent_workers=workers > 0,
        )
        device_name = torch.cuda.get_device_name() if cuda else cpu_name()
        print(
            f"device {args.accelerator} ({device_name}), torch threads {torch.get_num_threads()}, "
            f"batch {args.batch_size}, {args.steps} iterations per run ({args.warmup} warm-up), "
            f"{args.repeats} repeats, alternating"
        )
        print(
            f"baseline: fp32, G run twice, torchvision MNIST + DataLoader ({workers} workers); "
            f"ours: precision {precision}, compile {compile_networks}, batches drawn on the device"
        )
        results: dict[str, list[tuple[float, float]]] = {arm.name: [] for arm in order}
        for repeat in range(args.repeats):
            for arm in order:
                data = device_data if arm.device_data else loader
                rate, peak = measure(arm, data, args.batch_size, args.steps, args.warmup, repeat, args.accelerator)
                results[arm.name].append((rate, peak))
                print(f"  run {repeat + 1} {arm.name:8s} {rate:8.1f} images/s   {memory} {peak:7.0f} MiB", flush=True)

    medians = {name: statistics.median(rate for rate, _ in runs) for name, runs in results.items()}
    peaks = {name: max(peak for _, peak in runs) for name, runs in results.items()}
    for name in results:
        versus = f"   {medians[name] / medians['baseline']:.2f}x baseline" if args.ladder else ""
        print(f"{name:8s} median {medians[name]:8.1f} images/s   {memory} {peaks[name]:7.0f} MiB{versus}")
    print(f"ratio ours / baseline: {medians['ours'] / medians['baseline']:.2f}x")
    if "improved" in medians:  # the time an improved-recipe iteration takes, relative to a paper one
        print(f"ratio improved / ours (step time): {medians['ours'] / medians['improved']:.2f}x")


if __name__ == "__main__":
    main()
