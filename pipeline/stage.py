"""What the stages share: their arguments, the dataset they run, the prepared manifest, the train and render
stages' commands for runs outside DVC, and one clear error line for a user error."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infogan.atomic import NO_SPACE, NOT_WRITABLE, cannot_write
from infogan.data.registry import DATASETS
from infogan.errors import InfoGANError


def prepared_manifest(data_dir: Path) -> dict[str, Any]:
    """The manifest.json the prepare stage wrote into a prepared dataset folder."""
    path = Path(data_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or "splits" not in manifest:
        raise InfoGANError(f"{path} is missing or from an older version; rerun the prepare stage (dvc repro prepare)")
    return manifest


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dataset", required=True, help=f"one of: {', '.join(DATASETS)}")
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    return p


def stage_command(stage: str, dataset: str, params: Path, **paths: Path) -> list[str]:
    """`python -m pipeline.<stage> --dataset <dataset> --params <params> --<name> <path> ...`."""
    command = [sys.executable, "-m", f"pipeline.{stage}", "--dataset", dataset, "--params", str(params)]
    for name, path in paths.items():
        command += [f"--{name}", str(path)]
    return command


def train_command(dataset: str, params: Path, data: Path, folder: Path) -> list[str]:
    """The command that runs the train stage outside DVC (the seed sweep, the benchmarks, the tests):
    on the prepared `data`, with every output under `folder`: model/, history.csv and checkpoints/."""
    outputs = {"out": folder / "model", "history": folder / "history.csv", "checkpoints": folder / "checkpoints"}
    return stage_command("train", dataset, params, data=data, **outputs)


def render_command(dataset: str, params: Path, data: Path, folder: Path) -> list[str]:
    """The command that runs the render stage outside DVC on what `train_command` wrote into `folder`:
    its GIFs and sheets go to folder/media, its metrics to folder/metrics.json."""
    inputs = {"model": folder / "model", "data": data, "history": folder / "history.csv"}
    return stage_command("render", dataset, params, **inputs, media=folder / "media", metrics=folder / "metrics.json")


def os_error_line(err: OSError) -> str:
    """One line for an `OSError` that reached a stage's top: what was refused, on which path, and,
    for a full disk or a folder that cannot be written, what to do."""
    if err.filename and err.errno in (*NO_SPACE, *NOT_WRITABLE):
        return str(cannot_write(Path(err.filename), err))
    return f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")


def entry_point(main: Callable[[], None]) -> Callable[[], None]:
    """Run `main`; a user error prints one clear line (no traceback) and exits with status 2."""

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except InfoGANError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except OSError as err:  # the machine refused a file: a full disk, a read-only folder
            print(f"error: {os_error_line(err)}", file=sys.stderr)
            sys.exit(2)

    return wrapper
