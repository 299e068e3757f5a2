"""Stage `check_params`: every param of every stage checked at once, before DVC runs any other stage.

    python -m pipeline.check_params --out data/checked_params.json

DVC runs it first on every `dvc repro` (each verify@<dataset> depends on the small record it
writes), so a bad value anywhere stops the pipeline with the project's own message before any
other stage runs and DVC removes that stage's outputs. Without it, `datasets: []` would run nothing
and exit 0, and an unknown name in `datasets` would get DVC's message about a param of that name.
It checks the whole file with the same typed tree every stage builds when it starts
(pipeline/params.py): `datasets`, each dataset's `prepare.<dataset>` and `model.<dataset>`, `train`,
`improved` (read with the improved recipe), `render` and `tracking`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from infogan.atomic import write_json
from pipeline.params import parse_params, read_params
from pipeline.stage import entry_point


@entry_point
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--out", type=Path, required=True, help="JSON record of the datasets whose params were checked")
    args = p.parse_args()
    datasets = check_params(read_params(args.params))
    write_json({"datasets": datasets}, args.out)
    print(f"checked the params of every stage for {', '.join(datasets)}")


def check_params(params: dict) -> list[str]:
    """Raise `InfoGANError` naming the first bad param of any stage; return the listed datasets."""
    return parse_params(params).datasets


if __name__ == "__main__":
    main()
