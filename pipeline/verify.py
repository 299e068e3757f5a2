"""Stage `verify@<dataset>`: make sure the raw files are present and genuine; record what was verified.

    python -m pipeline.verify --dataset mnist --raw-dir data/raw --out data/verified/mnist.json

Reads `prepare.<dataset>` from params.yaml; the dataset's module (infogan/data/<dataset>.py) does
the checking. MNIST and SVHN: files missing from --raw-dir/<dataset> are downloaded from the
mirrors, and every file is checked against its MD5. CelebA cannot be downloaded: the copy placed
by hand in --raw-dir/celeba is checked whole.

DVC runs this stage every time (`always_changed`); it is quick when nothing changed, since CelebA's
image check is skipped while its verification manifest matches the folder. The prepare stage
depends on the small JSON written to --out, which changes only when the verified files do, so DVC
never hashes CelebA's 202,599 JPEGs.
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
    p.add_argument("--out", type=Path, required=True, help="JSON record of what was verified")
    args = p.parse_args()
    dataset = find_dataset(args.dataset)
    params = load_params(args.params, dataset.name)
    record = dataset.verify(params.source(dataset.name), args.raw_dir)
    write_json(record, args.out)
    print(f"verified {dataset.name} in {args.raw_dir / dataset.name}")


if __name__ == "__main__":
    main()
