"""Stage `check_params`: every param of every stage checked at once, before DVC runs any other stage.

    python -m pipeline.check_params --out data/checked_params.json

DVC runs it first on every `dvc repro` (each verify@<dataset> depends on the small record it
writes), so a bad value anywhere stops the pipeline with the project's own message before any
other stage runs and DVC removes that stage's outputs. Without it, `datasets: []` would run nothing
and exit 0, and an unknown name in `datasets` would get DVC's message about a param of that name.
It checks `datasets`, then, for each listed dataset, what its stages read: `prepare.<dataset>`,
`model.<dataset>`, `train`, `improved` (read with the improved recipe), `render` and `tracking`,
with the same code the stages use. Each stage checks its own params again when it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infogan.atomic import write_json
from infogan.errors import InfoGANError
from infogan.raw import source_config
from pipeline.params import load_params, render_config, section, training_configs
from pipeline.stage import check_datasets, entry_point

TRACKING_KEYS = ("tracking.uri", "tracking.artifact_root")


def check_params(params: Mapping[str, Any]) -> list[str]:
    """Raise `InfoGANError` naming the first bad param of any stage; return the listed datasets."""
    datasets = check_datasets(params)
    for dataset in datasets:
        source_config(dataset, section(params, f"prepare.{dataset}"))
        training_configs(params, dataset)
    render_config(params)
    for key in TRACKING_KEYS:
        value = section(params, key)
        if not isinstance(value, str) or not value:
            raise InfoGANError(f"{key} = {value!r} is invalid: it must be a non-empty string")
    return datasets


@entry_point
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--out", type=Path, required=True, help="JSON record of the datasets whose params were checked")
    args = p.parse_args()
    datasets = check_params(load_params(args.params))
    write_json({"datasets": datasets}, args.out)
    print(f"checked the params of every stage for {', '.join(datasets)}")


if __name__ == "__main__":
    main()
