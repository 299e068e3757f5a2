"""What a dataset module declares about itself, so that one module holds all of a dataset.

Each module under infogan/data/ that is a dataset (mnist.py, svhn.py, celeba.py) ends with a
`DATASET = Dataset(...)`: its params section `prepare.<name>` as a config type, how its raw files are
verified and how they are prepared, whether its labels are classes a categorical code is scored
against, and which of the evaluation's metrics apply to it (infogan/evaluation/registry.py, by
name). infogan/data/registry.py lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infogan.config import Section


@dataclass(frozen=True)
class Dataset:
    name: str
    source: type[Section]  # the params section prepare.<name>: where the raw files come from, what they must be
    # (source, raw_dir) -> a small JSON-able record of what was verified under raw_dir/<name>
    verify: Callable[[Any, Path], dict]
    # (source, raw_dir, out_dir) -> the manifest of the prepared splits written to out_dir
    prepare: Callable[[Any, Path, Path], dict]
    # the labels of its splits are classes (digits), which the first categorical code is matched to
    # after every epoch and by render; otherwise they are not scored against (CelebA's identities)
    class_labels: bool
    # render's metrics for it, in the order they are computed (infogan/evaluation/registry.py)
    metrics: tuple[str, ...]
