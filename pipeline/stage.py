"""What every stage entry point shares: reading params.yaml, checking the dataset, reporting errors."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from infogan.errors import InfoGANError

# The datasets this pipeline can prepare and train.
KNOWN_DATASETS = ("mnist", "celeba", "svhn")


def load_params(path: Path = Path("params.yaml")) -> dict[str, Any]:
    if not path.is_file():
        raise InfoGANError(f"{path} not found; run the stage from the project root (as dvc repro does)")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InfoGANError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(params, dict):
        raise InfoGANError(f"{path} must hold a mapping of sections")
    return params


def section(params: Mapping[str, Any], dotted: str) -> Any:
    """params['a']['b'] for dotted 'a.b', or an error naming the missing key."""
    node: Any = params
    for i, part in enumerate(dotted.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            raise InfoGANError(f"{'.'.join(dotted.split('.')[: i + 1])} is missing from params.yaml")
        node = node[part]
    return node


def check_dataset(name: str, params: Mapping[str, Any]) -> str:
    """Stop on an unknown dataset name, in the argument or in params.yaml's `datasets` list."""
    listed = section(params, "datasets")
    if not isinstance(listed, list) or not listed:
        raise InfoGANError(f"datasets must be a non-empty list; allowed values: {', '.join(KNOWN_DATASETS)}")
    for candidate in [name, *listed]:
        if candidate not in KNOWN_DATASETS:
            raise InfoGANError(f"unknown dataset {candidate!r}; allowed values: {', '.join(KNOWN_DATASETS)}")
    return name


def prepared_manifest(data_dir: Path) -> dict[str, Any]:
    """The manifest.json the prepare stage wrote into a prepared dataset folder.

    Its `labels` says what the labels in the splits are: `digits`, which a categorical code is
    matched to, or `identities` (CelebA), which no code is scored against.
    """
    path = Path(data_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("labels") not in ("digits", "identities"):
        raise InfoGANError(f"{path} is missing or from an older version; rerun the prepare stage (dvc repro prepare)")
    return manifest


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dataset", required=True, help=f"one of: {', '.join(KNOWN_DATASETS)}")
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    return p


def entry_point(main: Callable[[], None]) -> Callable[[], None]:
    """Run `main`; a user error prints one clear line (no traceback) and exits with status 2."""

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except InfoGANError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper
