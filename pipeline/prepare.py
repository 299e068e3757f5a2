"""Stage `prepare@<dataset>`: turn the verified raw files into uint8 tensor splits and a manifest.

    python -m pipeline.prepare --dataset mnist --raw-dir data/raw --out-dir data/prepared/mnist

Reads `prepare.<dataset>` from params.yaml. Runs after `verify@<dataset>` and checks the raw files
again (quickly) before reading them. Writes to --out-dir one <split>.pt per split ({'images': uint8
(N, C, H, W), 'labels': int64 (N,)}) and manifest.json, which says what the labels are: `digits`
(MNIST, SVHN: the class a categorical code is matched to) or `identities` (CelebA, whose 40 binary
attributes are in attributes.pt).
"""

from __future__ import annotations

from pathlib import Path

from infogan.atomic import write_json
from infogan.celeba import CelebaSource, prepare_celeba
from infogan.data import save_split
from infogan.mnist import MnistSource, load_mnist_split
from infogan.raw import source_config, verify_raw
from infogan.svhn import SvhnSource, load_svhn_split
from pipeline.params import load_params, section
from pipeline.stage import check_dataset, entry_point, parser


def _split_summary(images, labels) -> dict:
    return {"count": len(images), "image_shape": list(images.shape[1:]), "classes": int(labels.max()) + 1}


def prepare_digits(dataset: str, source: MnistSource | SvhnSource, raw_dir: Path, out_dir: Path) -> dict:
    """MNIST or SVHN: verify the raw files again (quick; it downloads what is missing), then parse each split."""
    record, folder, splits = verify_raw(dataset, source, raw_dir), raw_dir / dataset, ("train", "test")
    if isinstance(source, SvhnSource):
        parsed = {split: load_svhn_split(folder, split, source) for split in splits}
    else:
        parsed = {split: load_mnist_split(folder, split) for split in splits}
    manifest = {"dataset": dataset, "labels": "digits", "source_md5": record["source_md5"], "splits": {}}
    for split, (images, labels) in parsed.items():
        save_split(images, labels, out_dir / f"{split}.pt")
        manifest["splits"][split] = _split_summary(images, labels)
    return manifest


def prepare_celeba_splits(source: CelebaSource, raw_dir: Path, out_dir: Path) -> dict:
    summary = prepare_celeba(raw_dir, out_dir, source)
    return {
        "dataset": "celeba",
        "labels": "identities",
        "attributes": summary["attributes"],
        "source_md5": source.annotation_md5s(),
        "splits": {
            s: {"count": n, "image_shape": [3, source.image_size, source.image_size]}
            for s, n in summary["splits"].items()
        },
    }


@entry_point
def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, required=True, help="the raw data folder (each dataset in its own folder)")
    p.add_argument("--out-dir", type=Path, required=True)
    args = p.parse_args()
    params = load_params(args.params)
    dataset = check_dataset(args.dataset, params)
    source = source_config(dataset, section(params, f"prepare.{dataset}"))
    if isinstance(source, CelebaSource):
        manifest = prepare_celeba_splits(source, args.raw_dir, args.out_dir)
    else:
        manifest = prepare_digits(dataset, source, args.raw_dir, args.out_dir)
    write_json(manifest, args.out_dir / "manifest.json")
    counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
    print(f"prepared {dataset}: {counts} images in {args.out_dir}")


if __name__ == "__main__":
    main()
