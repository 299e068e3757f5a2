"""Stage `prepare@<dataset>`: turn the verified raw files into uint8 tensor splits and a manifest.

    python -m pipeline.prepare --dataset mnist --raw-dir data/raw --out-dir data/prepared/mnist

Reads `prepare.<dataset>` from params.yaml; the dataset's module (infogan/data/<dataset>.py) does
the work. Runs after `verify@<dataset>` and checks the raw files again (quickly) before reading
them. Writes to --out-dir one <split>.pt per split ({'images': uint8 (N, C, H, W), 'labels': int64
(N,)}) and manifest.json, which names the dataset, its splits and what their labels are: `digits`
(MNIST, SVHN) or `identities` (CelebA, whose 40 binary attributes are in attributes.pt). With
`prepare.<dataset>.neighbours: k` > 0, also each training image's k nearest training images in
pixel space (neighbours.pt, infogan/data/neighbours.py), which the improved recipe's training reads.
"""

from __future__ import annotations

from pathlib import Path

from infogan.atomic import write_json
from infogan.data.images import load_split
from infogan.data.neighbours import FILE, pixel_neighbours, save_neighbours
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
    source = params.source(dataset.name)
    manifest = dataset.prepare(source, args.raw_dir, args.out_dir)
    (args.out_dir / FILE).unlink(missing_ok=True)  # an earlier prepare's, for other images or another k
    if source.neighbours > 0:
        images, _ = load_split(args.out_dir / "train.pt")
        print(f"finding each of the {len(images)} training images' {source.neighbours} nearest ...", flush=True)
        save_neighbours(pixel_neighbours(images, source.neighbours), args.out_dir)
        manifest["neighbours"] = source.neighbours
    write_json(manifest, args.out_dir / "manifest.json")
    counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
    found = f", and each training image's {source.neighbours} nearest" if source.neighbours > 0 else ""
    print(f"prepared {dataset.name}: {counts} images{found} in {args.out_dir}")


if __name__ == "__main__":
    main()
