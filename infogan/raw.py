"""The raw datasets: making sure one dataset's files are present and genuine.

MNIST and SVHN files that are missing are downloaded from the source's mirrors; every file is
checked against its MD5. CelebA cannot be downloaded: the copy placed by hand is checked whole
(infogan/celeba.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infogan.celeba import CelebaSource, verify_celeba
from infogan.config import from_mapping
from infogan.mnist import MnistSource, fetch_mnist
from infogan.svhn import SvhnSource, fetch_svhn

Source = MnistSource | SvhnSource | CelebaSource
# each dataset's params section `prepare.<dataset>`, as a config type
SOURCE_TYPES = {"mnist": MnistSource, "svhn": SvhnSource, "celeba": CelebaSource}


def source_config(dataset: str, settings: Mapping[str, Any]) -> Source:
    """Where `dataset`'s raw files come from and what they must be, from its section `prepare.<dataset>`."""
    return from_mapping(SOURCE_TYPES[dataset], settings, f"prepare.{dataset}")


def verify_raw(dataset: str, source: Source, raw_dir: Path) -> dict:
    """What was verified for `dataset` under the raw data folder, as a small JSON-able dict."""
    if isinstance(source, CelebaSource):
        return {"dataset": dataset, **verify_celeba(raw_dir, source)}
    if isinstance(source, SvhnSource):
        files = fetch_svhn(raw_dir / dataset, source.mirrors, timeout_s=source.timeout_s, files=source.files())
    else:
        files = fetch_mnist(raw_dir / dataset, source.mirrors, timeout_s=source.timeout_s)
    return {"dataset": dataset, "source_md5": files}
