"""Stage `prepare@<dataset>`: turn the verified raw files into uint8 tensor splits and a manifest.

    python -m pipeline.prepare --dataset mnist --raw-dir data/raw --out-dir data/prepared/mnist

Reads `prepare.<dataset>` from params.yaml; the dataset's module (infogan/data/<dataset>.py) does
the work. Runs after `verify@<dataset>` and checks the raw files again (quickly) before reading
them. Writes to --out-dir one <split>.pt per split ({'images': uint8 (N, C, H, W), 'labels': int64
(N,)}) and manifest.json, which names the dataset, its splits and what their labels are: `digits`
(MNIST, SVHN) or `identities` (CelebA, whose 40 binary attributes are in attributes.pt).
"""

from __future__ import annotations

from pathlib import Path

from infogan.atomic import write_json
from infogan.data.registry import find_dataset
from pipeline.params import load_params
from pipeline.stage import entry_point, parser


@entry_point
def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, required=True, help="the raw data folder (each dataset in its own folder)")
    p.add_argument("--out-dir", type=Path, required=True)
    args = p.parse_args()
    dataset = find_dataset(args.dataset)
    params = load_params(args.params, dataset.name)
    manifest = dataset.prepare(params.source(dataset.name), args.raw_dir, args.out_dir)
    write_json(manifest, args.out_dir / "manifest.json")
    counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
    print(f"prepared {dataset.name}: {counts} images in {args.out_dir}")


if __name__ == "__main__":
    main()
