"""The Lightning Trainer a training runs in: devices, precision, DDP and clusters, from TrainConfig."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import pytorch_lightning as pl
from pytorch_lightning.plugins.environments import SLURMEnvironment
from pytorch_lightning.strategies import DDPStrategy, StrategyRegistry
from pytorch_lightning.utilities.warnings import PossibleUserWarning

from infogan.config import TrainConfig


def use_ddp_with_unused_parameters() -> None:
    """Make Lightning's `ddp`, which `strategy: auto` also picks for several devices or nodes, DDP
    with `find_unused_parameters=True`; `ddp_find_unused_parameters_true` already is.

    The module needs it. Each iteration has two backward passes: the discriminator's, which never
    reaches G's weights (the fakes are detached), and the generator's, with D's weights frozen. So
    each leaves part of the model without a gradient, and plain DDP stops at the first generator
    step ("It looks like your LightningModule has parameters that were not used in producing the
    loss"). A user who asks for DDP, or for several devices with the default `auto`, gets DDP
    that trains instead of a choice between an error and a strategy name to look up.
    """
    StrategyRegistry.register(
        "ddp",
        DDPStrategy,
        description="DDP with find_unused_parameters=True (the GAN's two backward passes each use part of it)",
        override=True,
        start_method="popen",
        find_unused_parameters=True,
    )


def _not_a_tip(record: logging.LogRecord) -> bool:
    return "litlogger" not in record.getMessage()


def quiet_dependencies() -> None:
    """Keep out of a training's log what its user cannot act on, each filtered narrowly by where it
    comes from and what it says: Lightning's advertisement for its cloud logger, and the deprecation
    warning Lightning's own pytree helper triggers in PyTorch on every fit."""
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if _not_a_tip not in rank_zero.filters:
        rank_zero.addFilter(_not_a_tip)
    warnings.filterwarnings(
        "ignore",
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        module=r"pytorch_lightning\.utilities\._pytree",
    )


def build_trainer(
    train: TrainConfig, precision: str, callbacks: Sequence[pl.Callback], progress_bar: bool = True
) -> pl.Trainer:
    """The Trainer for `train`'s devices, nodes and strategy, at `precision` (resolved, not "auto"),
    with Lightning's live progress bar or (for a log that is no terminal) without it.

    It has no logger (the stage gives global rank 0 its MLflow logger once the run is open), and no
    checkpointing of its own beyond what `callbacks` bring. Under SLURM, Lightning's requeue on a
    signal is off: it would close the MLflow run and save hpc_ckpt_<n>.ckpt into the working folder,
    where a requeued job resumes from the stage's checkpoint instead.
    """
    use_ddp_with_unused_parameters()
    quiet_dependencies()
    # the evaluation runs on rank 0 alone by design (EpochEvaluation): Lightning's advice to sync it across ranks
    warnings.filterwarnings("ignore", r"It is recommended to use `self.log\('eval/", PossibleUserWarning)
    return pl.Trainer(
        accelerator=train.accelerator,
        devices=train.devices,
        num_nodes=train.num_nodes,
        strategy=train.strategy,
        precision=precision,
        max_epochs=train.max_epochs,
        logger=False,
        callbacks=list(callbacks),
        log_every_n_steps=train.log_every_n_steps,
        enable_checkpointing=True,  # with a Checkpoint callback given, Lightning adds no ModelCheckpoint
        enable_model_summary=False,
        enable_progress_bar=progress_bar,
        plugins=[SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None,
    )
