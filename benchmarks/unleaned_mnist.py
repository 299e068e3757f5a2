"""A copy of prepared MNIST whose training digits no longer lean with their stroke (or width): an experiment.

    python benchmarks/unleaned_mnist.py --data data/prepared/mnist --out data/prepared/mnist_unleaned
    python benchmarks/unleaned_mnist.py --on width --out data/prepared/mnist_unleaned_width

In MNIST, within each class, thicker digits lean less to the right: the pooled within-class slope of
slant on stroke thickness is about -1.8 degrees a pixel (`benchmarks/traversal_lean.py --joint
--real`). A GAN whose continuous codes are independent must reproduce that dependence somewhere, and
a thickness code can, by leaning. To test whether that is why thickness codes lean, this writes the
training split with each digit sheared by the slope times its thickness's distance from its class's
mean, which takes the linear dependence out and keeps each class's mean slant and every digit's
stroke. The test split, the neighbour table and the manifest are copied as they are: the shears are a
few degrees, so a digit's nearest images hardly change. The labels are used only to take the
dependence out within each class; this is an experiment on the data, not a recipe, and nothing in
the pipeline reads it. Round 26 of docs/digits.md ran the recipe on it: the thickness code leaned all
the same, so that dependence is not why. `--slant skeleton` takes out the slant of the skeleton
(render's slant) instead; one pass leaves a quarter of it (round 36: -2.27 to -0.60 degrees a pixel).

`--on width` does the same for the digits' deslanted width: within most classes narrower digits lean
further right (pooled slope -0.95 degrees a pixel, r -0.17), and round 31 asked whether that is what
leans the width codes. A shear leaves the deslanted width as it was (up to resampling).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: benchmarks/ is found from the root
from benchmarks.factor_measures import affine
from benchmarks.traversal_lean import class_centred, slant_dependence, within_class_slope
from infogan.data.images import load_split, save_split
from infogan.evaluation.factors import PROPERTIES, ink_slant, skeleton_slant

SLANTS = {"ink": ink_slant, "skeleton": skeleton_slant}  # what a digit's slant is read as (docs/model.md)


def unlean(
    images: torch.Tensor, labels: torch.Tensor, on: str = "thickness", chunk: int = 5000, slant_by: str = "ink"
) -> torch.Tensor:
    """uint8 (N, 1, H, W) digits -> the same digits, each sheared (x += s * y, y up) so that its slant
    becomes slant - slope * (P - its class's mean P), P being the property `on` ("thickness" or
    "width") and slope the pooled within-class slope of slant on P: within the classes, slant no
    longer follows P. Slant is `slant_by`'s: the ink's shear (round 26's copy) or the skeleton's
    (render's)."""
    slant, factor = SLANTS[slant_by](images).double(), PROPERTIES[on](images).double()
    slope = within_class_slope(slant, factor, labels)[0]
    target = slant - slope * class_centred(factor, labels)
    shears = (torch.tan(torch.deg2rad(target)) - torch.tan(torch.deg2rad(slant))).float()
    out = []
    for part, s in zip(images.split(chunk), shears.split(chunk), strict=True):
        matrix = torch.eye(2).repeat(len(part), 1, 1)
        matrix[:, 0, 1] = s  # a point at height y (up) reads from s * y to its left: the ink leans right by s
        out.append((affine(part.float() / 255, matrix).clamp(0, 1) * 255).round().to(torch.uint8))
    return torch.cat(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/prepared/mnist"), help="a prepared MNIST folder")
    p.add_argument("--out", type=Path, default=Path("data/prepared/mnist_unleaned"))
    p.add_argument(
        "--on", choices=("thickness", "width"), default="thickness", help="the property slant stops following"
    )
    p.add_argument(
        "--slant",
        choices=tuple(SLANTS),
        default="ink",
        help="the slant taken out: the ink's shear (round 26's copy) or the skeleton's (render's)",
    )
    args = p.parse_args()
    images, labels = load_split(args.data / "train.pt")
    unleaned = unlean(images, labels, args.on, slant_by=args.slant)
    args.out.mkdir(parents=True, exist_ok=True)
    save_split(unleaned, labels, args.out / "train.pt")
    for name in ("test.pt", "neighbours.pt", "manifest.json"):
        if (args.data / name).exists():
            shutil.copy2(args.data / name, args.out / name)
    for name, split in (("as prepared", images), ("unleaned", unleaned)):
        dependence = slant_dependence(split, labels, SLANTS[args.slant])
        print(
            f"{name}: {args.slant} slant within classes on "
            + ", on ".join(f"{prop} {slope:+.2f} deg/px (r {r:+.3f})" for prop, (slope, r) in dependence.items())
            + "; mean "
            + ", ".join(f"{prop} {measure(split).mean():+.3f}" for prop, measure in PROPERTIES.items())
        )


if __name__ == "__main__":
    main()
