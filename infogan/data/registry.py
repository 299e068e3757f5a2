"""Every dataset the pipeline can prepare, train and render, by name: adding one is adding its
module under infogan/data/ (ending with `DATASET = Dataset(...)`), a line here and its params
sections (`prepare.<name>`, `model.<name>`)."""

from __future__ import annotations

from infogan.data import celeba, mnist, svhn
from infogan.data.dataset import Dataset
from infogan.errors import InfoGANError

DATASETS: dict[str, Dataset] = {dataset.name: dataset for dataset in (mnist.DATASET, celeba.DATASET, svhn.DATASET)}


def find_dataset(name: str) -> Dataset:
    """The dataset called `name`, or an error naming the allowed values."""
    if name not in DATASETS:
        raise InfoGANError(f"unknown dataset {name!r}; allowed values: {', '.join(DATASETS)}")
    return DATASETS[name]
