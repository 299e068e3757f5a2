"""The train stage's per-epoch history (a CSV, one row per epoch): its columns, and reading it back after training."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from infogan.errors import InfoGANError

# The epoch aggregates of these step keys make up one row of the training history.
HISTORY_KEYS = ("loss/d", "loss/g", "info/categorical", "info/continuous")
# and the epoch aggregate of every step key under this prefix: the improved recipe's terms, unweighted
IMPROVED_PREFIX = "improved/"


def read_history(history: Path) -> pd.DataFrame:
    """The train stage's per-epoch history (one row per epoch, with the iterations done by its end)."""
    table = pd.read_csv(history)
    if table.empty:
        raise InfoGANError(f"{history} has no epochs; rerun the train stage")
    return table


def final_losses(table: pd.DataFrame) -> dict[str, float]:
    last = table.iloc[-1]
    return {f"final/{key}": float(last[key]) for key in HISTORY_KEYS if key in table}


def last_iteration(table: pd.DataFrame) -> int:
    """The training's last iteration: the MLflow step at which evaluations after training are logged,
    so that they are the latest values of their keys in the run."""
    return int(table["iteration"].iloc[-1])
