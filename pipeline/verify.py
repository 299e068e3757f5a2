"""Stage `verify@<dataset>`: make sure the raw files are present and genuine; record what was verified.

    python -m pipeline.verify --dataset mnist --raw-dir data/raw --out data/verified/mnist.json

Reads `prepare.<dataset>` from params.yaml. MNIST and SVHN: files missing from --raw-dir/<dataset>
are downloaded from the mirrors, and every file is checked against its MD5. CelebA cannot be
downloaded: the copy placed by hand in --raw-dir/celeba is checked whole (infogan/celeba.py).

DVC runs this stage every time (`always_changed`); it is quick when nothing changed, since CelebA's
image check is skipped while its verification manifest matches the folder. The prepare stage
depends on the small JSON written to --out, which changes only when the verified files do, so DVC
never hashes CelebA's 202,599 JPEGs.
"""

from __future__ import annotations

from pathlib import Path

from infogan.atomic import write_json
from infogan.celeba import CelebaSource, verify_celeba
from infogan.config import from_mapping
from infogan.mnist import MnistSource, fetch_mnist
from infogan.svhn import SvhnSource, fetch_svhn
from pipeline.stage import check_dataset, entry_point, load_params, parser, section


def verify(dataset: str, settings: dict, raw_dir: Path) -> dict:
    """What was verified for `dataset` under the raw data folder, as a small JSON-able dict."""
    key = f"prepare.{dataset}"
    if dataset == "celeba":
        celeba = from_mapping(CelebaSource, settings, key, require_all=True)
        return {"dataset": dataset, **verify_celeba(raw_dir, celeba)}
    if dataset == "svhn":
        svhn = from_mapping(SvhnSource, settings, key, require_all=True)
        files = fetch_svhn(raw_dir / dataset, svhn.mirrors, timeout_s=svhn.timeout_s, files=svhn.files())
    else:
        mnist = from_mapping(MnistSource, settings, key, require_all=True)
        files = fetch_mnist(raw_dir / dataset, mnist.mirrors, timeout_s=mnist.timeout_s)
    return {"dataset": dataset, "source_md5": files}


@entry_point
def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, required=True, help="the raw data folder (each dataset in its own folder)")
    p.add_argument("--out", type=Path, required=True, help="JSON record of what was verified")
    args = p.parse_args()
    params = load_params(args.params)
    dataset = check_dataset(args.dataset, params)
    record = verify(dataset, section(params, f"prepare.{dataset}"), args.raw_dir)
    write_json(record, args.out)
    print(f"verified {dataset} in {args.raw_dir / dataset}")


if __name__ == "__main__":
    main()
