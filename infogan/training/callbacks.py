"""Training callbacks: the weights' moving average, per-epoch evaluation and history, progress lines
for logs, sample snapshots, peak memory.

They call the same metric and rendering functions as the render stage, so numbers logged during
training and numbers computed later from the checkpoint mean the same thing.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.callbacks import WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn

from infogan.evaluation.history import HISTORY_KEYS, IMPROVED_PREFIX
from infogan.evaluation.metrics import categorical_code_matching
from infogan.evaluation.traversal import sample_grid
from infogan.model.infogan import InfoGAN
from infogan.training.bookkeeping import iterations_done, iterations_planned


class WeightAverage(WeightAveraging):
    """An exponential moving average of the training module's weights (G, D, Q and their buffers),
    after every iteration: average = decay * average + (1 - decay) * trained (`improved.ema_decay`).

    Lightning's weight-averaging callback: checkpoints hold the average as their weights and the
    trained weights beside them, so a resumed run goes on with both; when training ends the module
    takes the average, so the model the train stage saves and registers is the average. The evaluation and
    the snapshots read `networks(module)`, the average once it exists.

    Each update is one in-place lerp over all the weights (`multi_avg_fn`). Lightning's
    EMAWeightAveraging computes the same average tensor by tensor with two temporary copies of each
    (its `avg_fn`), several times slower (benchmarks/train_overhead.py)."""

    def __init__(self, decay: float):
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay))  # updated after every iteration

    def averaged_module(self) -> pl.LightningModule | None:
        """The averaged copy of the whole training module, or None before fit builds it."""
        return None if self._average_model is None else self._average_model.module

    def networks(self, pl_module: pl.LightningModule) -> InfoGAN:
        """The averaged networks, or the module's own before the first update."""
        average = self._average_model  # Lightning's AveragedModel of the whole module, built at fit's setup
        if average is None or int(average.n_averaged) == 0:
            return pl_module.model
        return average.module.model


def evaluated_networks(pl_module: pl.LightningModule, average: WeightAverage | None) -> InfoGAN:
    return average.networks(pl_module) if average is not None else pl_module.model


class EpochEvaluation(pl.Callback):
    """At each epoch end: categorical accuracy on held-out labelled images, then a history row.

    The evaluation runs in the training steps' precision (under bf16 autocast where they do): a
    curve to watch, several times as fast as fp32 on a bf16 CPU. The render stage's figures, which
    metrics.json reports, read the saved model in fp32.

    `history` holds one dict per epoch: the epoch, the training iterations so far, the epoch mean
    of each of HISTORY_KEYS and of each improved-recipe term the step logs (`improved/<key>`,
    unweighted), and the evaluation metrics, of the weights' moving average when there is
    one (`average`). Under DDP only global rank 0 evaluates (every rank holds the same weights) and
    has the metrics in its history.
    """

    def __init__(
        self,
        images: torch.Tensor | None,
        labels: torch.Tensor | None,
        batch_size: int = 1000,
        average: WeightAverage | None = None,
    ):
        self.images, self.labels, self.batch_size, self.average = images, labels, batch_size, average
        self.history: list[dict[str, float]] = []

    def state_dict(self) -> dict[str, Any]:  # saved in checkpoints, so a resumed run's history is whole
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict["history"])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        iterations = iterations_done(trainer)
        row: dict[str, float] = {"epoch": trainer.current_epoch, "iteration": iterations}
        for key in HISTORY_KEYS:
            value = trainer.callback_metrics.get(f"{key}_epoch")
            if value is not None:
                row[key] = float(value)
        for name, value in trainer.callback_metrics.items():  # the improved recipe's terms, unweighted
            if name.startswith(IMPROVED_PREFIX) and name.endswith("_epoch"):
                row[name.removesuffix("_epoch")] = float(value)
        if self.images is not None and pl_module.model.codes.categorical_sizes and trainer.is_global_zero:
            networks = evaluated_networks(pl_module, self.average)
            with trainer.precision_plugin.forward_context():  # bf16 autocast where the steps run in it
                metrics, _ = categorical_code_matching(networks, self.images, self.labels, self.batch_size)
            pl_module.log_dict(metrics, on_step=False, on_epoch=True, rank_zero_only=True)
            row.update(metrics)
        self.history.append(row)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressLines(pl.Callback):
    """One line per epoch, for a log that is no terminal (a file, a pipe, a CI job), where a live
    progress bar shows nothing: the epoch and iteration of the total, images per second, the time
    elapsed and left, and the epoch's history row from `evaluation` (its mean losses, and the
    accuracy when there are labels; the improved recipe's terms stay in the history alone). Global
    rank 0 writes it; the rate counts every process's images."""

    def __init__(self, evaluation: EpochEvaluation, batch_size: int, stream: TextIO | None = None):
        self.evaluation, self.batch_size, self.stream = evaluation, batch_size, stream
        self.start, self.iterations = 0.0, 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start, self.iterations = time.monotonic(), 0  # a resumed run's rate counts from where it resumed

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self.iterations += 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        elapsed = max(time.monotonic() - self.start, 1e-9)
        done, total = iterations_done(trainer), iterations_planned(trainer)
        per_second = self.iterations / elapsed
        row = self.evaluation.history[-1] if self.evaluation.history else {}
        shown = (key for key in row if key not in ("epoch", "iteration") and not key.startswith(IMPROVED_PREFIX))
        values = ", ".join(f"{key} {row[key]:.4g}" for key in shown)
        line = (
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}, iteration {done}/{total}, "
            f"{per_second * self.batch_size * trainer.world_size:.0f} images/s, elapsed {_clock(elapsed)}, "
            f"left {_clock((total - done) / per_second if per_second else 0)}" + (f", {values}" if values else "")
        )
        print(line, file=self.stream or sys.stdout, flush=True)


class SampleSnapshots(pl.Callback):
    """Every `every_n_epochs` epochs (and after the last), hand a grid of fixed-latent samples to
    `save` (of the weights' moving average when there is one); under DDP on global rank 0 only."""

    def __init__(
        self,
        save: Callable[[int, Image.Image], None],
        every_n_epochs: int,
        seed: int = 0,
        average: WeightAverage | None = None,
    ):
        self.save, self.every_n_epochs, self.seed, self.average = save, every_n_epochs, seed, average

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if trainer.is_global_zero and (epoch % self.every_n_epochs == 0 or epoch == trainer.max_epochs):
            self.save(epoch, sample_grid(evaluated_networks(pl_module, self.average), seed=self.seed))


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class PeakMemory(pl.Callback):
    """At each epoch end, log the process's peak RSS (`system/peak_rss_mib`) and, on CUDA, the peak
    memory torch allocated (`system/peak_cuda_mib`): flat curves mean no leak. Under DDP, the
    largest over the processes."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {"system/peak_rss_mib": peak_rss_mib()}
        if pl_module.device.type == "cuda":
            metrics["system/peak_cuda_mib"] = torch.cuda.max_memory_allocated(pl_module.device) / 2**20
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=True, reduce_fx="max")
