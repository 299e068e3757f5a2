"""Stage `prepare@<dataset>`: fetch and verify the raw files, write uint8 tensor splits and a manifest.

    python -m pipeline.prepare --dataset mnist --raw-dir data/raw/mnist --out-dir data/prepared/mnist

Reads `prepare.<dataset>` from params.yaml. Raw files already in --raw-dir (placed by hand) are
verified and used without downloading. Writes train.pt, test.pt and manifest.json to --out-dir.
"""

from __future__ import annotations

from pathlib import Path

from dataclasses import dataclass

from infogan.atomic import write_json
from infogan.config import from_mapping, positive
from infogan.data import save_split
from infogan.mnist import fetch_mnist, load_mnist_split
from pipeline.stage import check_dataset, entry_point, load_params, parser, section


@dataclass(frozen=True)
class MnistSource:
    mirrors: tuple[str, ...] = ()  # tried in order until one serves a file with the right MD5
    timeout_s: float = positive(30.0)


def prepare_mnist(settings: dict, raw_dir: Path, out_dir: Path) -> dict:
    source = from_mapping(MnistSource, settings, "prepare.mnist", require_all=True)
    checksums = fetch_mnist(raw_dir, source.mirrors, timeout_s=source.timeout_s)
    manifest = {"dataset": "mnist", "source_md5": checksums, "splits": {}}
    for split in ("train", "test"):
        images, labels = load_mnist_split(raw_dir, split)
        save_split(images, labels, out_dir / f"{split}.pt")
        manifest["splits"][split] = {
            "count": len(images),
            "image_shape": list(images.shape[1:]),
            "classes": int(labels.max()) + 1,
        }
    return manifest


PREPARERS = {"mnist": prepare_mnist}


@entry_point
def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    args = p.parse_args()
    params = load_params(args.params)
    dataset = check_dataset(args.dataset, params)
    manifest = PREPARERS[dataset](section(params, f"prepare.{dataset}"), args.raw_dir, args.out_dir)
    write_json(manifest, args.out_dir / "manifest.json")
    counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
    print(f"prepared {dataset}: {counts} images in {args.out_dir}")


if __name__ == "__main__":
    main()
