"""A copy of prepared MNIST with every digit mirrored left to right: an experiment.

    python benchmarks/mirrored_mnist.py --data data/prepared/mnist --out data/prepared/mnist_mirrored

Round 26 of docs/digits.md found the thickness codes thinning the digits as they lean them right and
thickening them as they lean them left, on real digits and on digits whose own dependence of slant on
thickness was taken out (benchmarks/unleaned_mnist.py). Mirrored, every digit's slant changes sign and
its thickness and width stay, so the data's dependence turns round too: a lean that comes from the data
turns with it, and one that comes from the network does not. Both splits are mirrored, so that
evaluation reads the digits the model learned; the neighbour table is copied as it is (a mirror keeps
every distance between two images). Nothing in the pipeline reads this copy.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: benchmarks/ is found from the root
from benchmarks.traversal_lean import slant_dependence
from infogan.data.images import load_split, save_split
from infogan.evaluation.factors import ink_slant


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/prepared/mnist"), help="a prepared MNIST folder")
    p.add_argument("--out", type=Path, default=Path("data/prepared/mnist_mirrored"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        images, labels = load_split(args.data / f"{split}.pt")
        mirrored = images.flip(-1)
        save_split(mirrored, labels, args.out / f"{split}.pt")
        for name, digits in (("as prepared", images), ("mirrored", mirrored)):
            slope, r = slant_dependence(digits, labels)["thickness"]
            print(
                f"{split}, {name}: mean slant {ink_slant(digits).mean():+.2f} deg, slant within classes on "
                f"thickness {slope:+.2f} deg/px (r {r:+.3f})"
            )
    for name in ("neighbours.pt", "manifest.json"):
        if (args.data / name).exists():
            shutil.copy2(args.data / name, args.out / name)


if __name__ == "__main__":
    main()
