"""Where the tests find the four genuine MNIST .gz files, and how they get them where no folder holds them.

In order: the folder `INFOGAN_MNIST_DIR` names (only that one, when it is set); `../shared/data/mnist/`
beside the checkout; the checkout's own `data/raw/mnist/`, as `dvc repro` leaves it. Where none holds
the four, they are fetched once into `data/raw/mnist/` by the project's own download code, from the
mirrors of `params.yaml`, each checked against its MD5.

Imported by `tests/conftest.py` as `tests.mnist_files` (pytest's importlib mode resolves it from the
project root); `python -c "from tests.mnist_files import mnist_files; print(mnist_files())"` runs it alone.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from infogan.data.mnist import MNIST_FILES, fetch_mnist
from infogan.errors import InfoGANError

ROOT = Path(__file__).resolve().parent.parent
ENV = "INFOGAN_MNIST_DIR"


class MnistMissing(Exception):
    """No folder holds the four files and they could not be fetched: one line on what to do."""


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MNIST_FILES)


def mnist_files(root: Path = ROOT, environ: Mapping[str, str] = os.environ) -> Path:
    """The folder holding the four MNIST .gz files for the checkout at `root` (see the module's doc)."""
    if environ.get(ENV):
        folder = Path(environ[ENV])
        if not _complete(folder):
            missing = ", ".join(name for name in MNIST_FILES if not (folder / name).is_file())
            raise MnistMissing(f"{ENV}={folder} lacks {missing}: put the four MNIST .gz files there, or unset it")
        return folder
    own = root / "data" / "raw" / "mnist"
    for folder in (root.parent / "shared" / "data" / "mnist", own):
        if _complete(folder):
            return folder
    source = yaml.safe_load((root / "params.yaml").read_text())["prepare"]["mnist"]
    own.mkdir(parents=True, exist_ok=True)
    # pytest-xdist's workers each ask: one fetches, the others wait for it and find the files
    lock = os.open(own, os.O_RDONLY)  # a lock on the folder itself: no lock file left in it
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(own):
            return own
        print(f"MNIST for the tests: none in {ENV}, {root.parent / 'shared/data/mnist'} or {own}; fetching it there")
        try:
            fetch_mnist(own, source["mirrors"], timeout_s=source["timeout_s"])
        except InfoGANError as err:
            reason = str(err).splitlines()[0].removesuffix(" Mirrors tried:")
            raise MnistMissing(
                f"the tests need the four MNIST .gz files, and fetching them into {own} failed ({reason}): "
                f"run `dvc repro` once with internet access, or place them in {own} or in a folder {ENV} names"
            ) from None
    finally:
        os.close(lock)  # and with it the lock
    return own
