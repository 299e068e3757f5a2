"""Checkpoints: the periodic, atomic save an interrupted training resumes from, and the check that
one may be resumed from (reading it: infogan/model/load.py).

A training checkpoint is Lightning's (weights, both optimizers, the loop counters, the data
loader's position in its epoch, the callbacks' state) plus what Lightning leaves out:
  - every random number generator the run draws from (torch CPU and CUDA, which draw the latents
    and the improved recipe's transformations; Python's and NumPy's), saved by
    `ResumableCheckpoint`, under DDP for every rank (each draws its own latents). The data order
    needs no state: it is a function of (seed, epoch) (infogan/data/batches.py), and the loader's position
    in the epoch is in Lightning's loop state;
  - the module's running loss sums (infogan/training/module.py), so a resumed epoch's means are whole;
  - `checkpoint["infogan"]`: what the caller passed as metadata (the train stage puts the MLflow
    run id and a fingerprint of the configuration there) and the iteration it was written at.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint

from infogan.atomic import atomic_path, partial_path
from infogan.config import flatten
from infogan.errors import InfoGANError
from infogan.model.load import read_checkpoint
from infogan.training.bookkeeping import iterations_done

# train keys that change what is reported, not what is trained: a checkpoint made with other values resumes
REPORTING_KEYS = ("log_every_n_steps", "sample_every_n_epochs", "eval_batch_size", "checkpoint_every_n_steps")


def capture_rng() -> dict[str, Any]:
    """The state of every generator a training run draws from, as tensors and plain values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["position"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value: Any) -> Any:
    """random.setstate wants the tuples getstate gave; a round trip through a checkpoint keeps them, but be sure."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_atomically(trainer: pl.Trainer, path: Path, weights_only: bool = False) -> None:
    """`trainer.save_checkpoint` to a temporary name beside `path`, then rename: a reader (or a
    resumed run) never sees a half-written checkpoint. Every rank must call it (Lightning's save
    waits for all); global rank 0 alone writes. `weights_only`: the weights and hyperparameters
    without the optimizers' and callbacks' state (a third of the size for the paper's MNIST
    model), enough to render but not to resume."""
    if not trainer.is_global_zero:  # takes part in the save, under the name rank 0 writes
        trainer.save_checkpoint(partial_path(path), weights_only=weights_only)
        return
    with atomic_path(path) as tmp:  # a full disk or a read-only folder: one error, no partial checkpoint
        trainer.save_checkpoint(tmp, weights_only=weights_only)


class ResumableCheckpoint(Checkpoint):
    """Writes the whole training state to `path` every `every_n_steps` iterations, atomically.

    A save that falls on an epoch's last batch waits for the epoch's end, after the evaluation and
    the other callbacks, so that a run resumed from it starts the next epoch with nothing owed.
    (Lightning runs `Checkpoint` callbacks after the others at an epoch's end.)
    """

    def __init__(self, path: Path, every_n_steps: int, metadata: dict[str, Any]):
        self.path, self.every_n_steps, self.metadata = Path(path), every_n_steps, dict(metadata)
        self._rng_to_restore: list[dict[str, Any]] | None = None  # one state per rank
        self._world_size = 1
        self.saved_at: list[int] = []  # iterations saved at by this process

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._world_size = trainer.world_size

    def state_dict(self) -> dict[str, Any]:
        rng = capture_rng()
        if self._world_size == 1:
            return {"rng": rng}
        # every rank saves at once (trainer.save_checkpoint runs on all), so they can gather here
        by_rank: list[Any] = [None] * self._world_size
        torch.distributed.all_gather_object(by_rank, rng)
        return {"rng": rng, "rng_by_rank": by_rank}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "rng" in state_dict:
            self._rng_to_restore = state_dict.get("rng_by_rank") or [state_dict["rng"]]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after Lightning has restored everything else and before the first resumed iteration. A rank
        # the checkpoint has no state for (it was made with fewer) keeps the seed it started with
        if self._rng_to_restore is not None:
            if trainer.global_rank < len(self._rng_to_restore):
                restore_rng(self._rng_to_restore[trainer.global_rank])
            self._rng_to_restore = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["infogan"] = {**self.metadata, "iteration": iterations_done(trainer)}

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        if batch_idx + 1 < trainer.num_training_batches and iterations_done(trainer) % self.every_n_steps == 0:
            self.save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if iterations_done(trainer) % self.every_n_steps == 0:
            self.save(trainer)

    def save(self, trainer: pl.Trainer) -> None:
        save_atomically(trainer, self.path)
        self.saved_at.append(iterations_done(trainer))


def training_identity(resolved: dict[str, Any], manifest_sha256: str, uri: str) -> dict[str, Any]:
    """What a checkpoint must share with this run to be resumed: the configuration that shapes the
    weights (reporting keys aside), the prepared data (its manifest's hash) and the tracking store."""
    train = {k: v for k, v in resolved["train"].items() if k not in REPORTING_KEYS}
    return {**resolved, "train": train, "data_manifest_sha256": manifest_sha256, "tracking_uri": uri}


def fingerprint(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def resumable_checkpoint(path: Path, identity: dict[str, Any], rank_zero: bool = True) -> dict[str, Any] | None:
    """The metadata of the checkpoint at `path` if this run should resume from it, else None.

    A checkpoint made with a different identity is moved to previous.ckpt (never reused silently,
    never lost), and the differences are printed: by global rank 0 only (`rank_zero`); the other
    ranks reach the same answer without touching the file. An unreadable one stops the stage.
    """
    if not path.is_file():
        return None
    meta = read_checkpoint(path, advice="cannot resume from it: move or delete it to train from the start").get(
        "infogan"
    )
    if not isinstance(meta, dict) or not {"fingerprint", "run_id", "iteration", "identity"} <= meta.keys():
        raise InfoGANError(
            f"{path} has no resume record (it was not written by the train stage's periodic "
            "save); cannot resume from it: move or delete it to train from the start"
        )
    if meta["fingerprint"] == fingerprint(identity):
        return meta
    if not rank_zero:
        return None
    old, new = flatten(meta["identity"]), flatten(identity)
    changed = [
        f"{k}: {old.get(k, '(none)')} -> {new.get(k, '(none)')}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]
    previous = path.with_name("previous.ckpt")
    os.replace(path, previous)
    print(
        f"not resuming: {path} (MLflow run {meta['run_id']}, iteration {meta['iteration']}) was made with a "
        f"different configuration ({'; '.join(changed[:8])}{'; ...' if len(changed) > 8 else ''}). "
        f"Starting a new run; that checkpoint is kept as {previous}.",
        flush=True,
    )
    return None
