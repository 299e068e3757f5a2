"""Synthetic copies of CelebA and SVHN with the real layout and the real sizes, to rehearse the pipeline on.

    python benchmarks/synthetic_copies.py --out /tmp/rehearsal                    # both, full size
    python benchmarks/synthetic_copies.py --out /tmp/small --celeba-count 2000 --svhn-counts 700 300

CelebA (in OUT/raw/celeba, as a user places it): `img_align_celeba.zip` holding 202,599 JPEGs of
178x218 named 000001.jpg to 202599.jpg under img_align_celeba/, each a face-like drawing with
noise so that the JPEGs are about as large as the real ones (about 1.4 GB in all); and the five
annotation files in the official formats and counts, with the real partition (162,770 train,
19,867 valid, 19,962 test). SVHN (in OUT/mirror, for a loopback mirror to serve): train_32x32.mat
and test_32x32.mat with 73,257 and 26,032 images, in the official layout (X: 32x32x3xN uint8, y:
Nx1 labels 1..10).

Nothing here is real data: faces and digits are not judged on it, only time, memory and disk.
OUT/synthetic_params.yaml gets the `prepare.celeba` and `prepare.svhn` values (checksums and
counts) of this copy; the shipped params.yaml keeps the real ones. The same --seed writes the same
bytes.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.io
import yaml
from PIL import Image, ImageDraw

from infogan.data.celeba import ATTRIBUTES, IDENTITY, IMAGE_DIR, PARTITION, ZIP_NAME
from infogan.data.download import file_md5
from infogan.progress import Progress

CELEBA_COUNT = 202_599
CELEBA_SPLITS = (162_770, 19_867, 19_962)  # train, valid, test, in file order
WIDTH, HEIGHT = 178, 218
ZIP_TIME = (2015, 9, 28, 0, 0, 0)  # every entry's timestamp, so the bytes depend on the seed alone
JPEG_QUALITY = 85  # with NOISE_STD, about 7 KB per image: the real zip's 1.4 GB over 202,599
NOISE_STD = 4.5
CHUNK = 500  # images per worker task
# the official attribute names, in the official order
ATTRIBUTE_NAMES = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]
LANDMARKS = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
SVHN_COUNTS = (73_257, 26_032)


def split_sizes(count: int) -> tuple[int, int, int]:
    """The real partition for the real count; for another count, the same shares."""
    if count == CELEBA_COUNT:
        return CELEBA_SPLITS
    train = round(count * CELEBA_SPLITS[0] / CELEBA_COUNT)
    valid = round(count * CELEBA_SPLITS[1] / CELEBA_COUNT)
    return train, valid, count - train - valid


def face(rng: np.random.Generator, noise: np.ndarray) -> bytes:
    """One face-like 178x218 RGB JPEG: a background of two colours, hair, a face with eyes and a
    mouth, and pixel noise (which is what makes a JPEG as large as a photograph's)."""
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, HEIGHT)[:, None, None]
    background = (top * (1 - ramp) + bottom * ramp) * np.ones((1, WIDTH, 1))
    image = Image.fromarray(background.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    cx, cy = WIDTH / 2 + rng.normal(0, 4), HEIGHT / 2 + rng.normal(8, 4)
    rx, ry = rng.uniform(38, 52), rng.uniform(50, 66)
    hair = tuple(int(v) for v in rng.integers(0, 140, 3))
    draw.ellipse((cx - rx - 8, cy - ry - 18, cx + rx + 8, cy + ry * 0.6), fill=hair)
    skin = tuple(int(v) for v in (rng.uniform(150, 250), rng.uniform(110, 200), rng.uniform(80, 170)))
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=skin)
    for side in (-1, 1):  # the aligned crop puts the eyes at about the same place in every image
        ex, ey = cx + side * rx * 0.4, cy - ry * 0.15
        draw.ellipse((ex - 7, ey - 4, ex + 7, ey + 4), fill=(250, 250, 250))
        draw.ellipse((ex - 3, ey - 3, ex + 3, ey + 3), fill=tuple(int(v) for v in rng.integers(20, 120, 3)))
    mouth = cy + ry * 0.5
    draw.chord((cx - 16, mouth - 6, cx + 16, mouth + 6 + rng.uniform(0, 8)), 0, 180, fill=(150, 40, 50))
    shift = rng.integers(0, noise.shape[0] - HEIGHT), rng.integers(0, noise.shape[1] - WIDTH)
    grain = noise[shift[0] : shift[0] + HEIGHT, shift[1] : shift[1] + WIDTH]
    pixels = np.clip(np.asarray(image, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _faces(task: tuple[int, int, int]) -> list[bytes]:
    """Images [start, stop) of the copy made with `seed`: each chunk has its own generator, so the
    bytes do not depend on the number of workers."""
    seed, start, stop = task
    rng = np.random.default_rng([seed, start])
    noise = rng.normal(0, NOISE_STD, (HEIGHT + 64, WIDTH + 64, 3)).astype(np.int16)
    return [face(rng, noise) for _ in range(start, stop)]


def _annotations(count: int, rng: np.random.Generator) -> dict[str, str]:
    """The five annotation files' text in the official formats."""
    names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
    splits = np.repeat([0, 1, 2], split_sizes(count))
    likely = rng.uniform(0.05, 0.8, len(ATTRIBUTE_NAMES))  # each attribute's share of 1s
    values = np.where(rng.random((count, len(ATTRIBUTE_NAMES))) < likely, 1, -1)
    boxes = np.column_stack([rng.integers(40, 200, (count, 2)), rng.integers(100, 400, (count, 2))])
    landmarks = rng.integers(60, 160, (count, 10))
    return {
        PARTITION: "".join(f"{n} {s}\n" for n, s in zip(names, splits, strict=True)),
        ATTRIBUTES: f"{count}\n{' '.join(ATTRIBUTE_NAMES)} \n"
        + "".join(f"{n} {' '.join(f'{v:2d}' for v in row)}\n" for n, row in zip(names, values, strict=True)),
        IDENTITY: "".join(f"{n} {i}\n" for n, i in zip(names, rng.integers(1, 10_178, count), strict=True)),
        "list_bbox_celeba.txt": f"{count}\nimage_id x_1 y_1 width height\n"
        + "".join(f"{n} {' '.join(f'{v:5d}' for v in row)}\n" for n, row in zip(names, boxes, strict=True)),
        "list_landmarks_align_celeba.txt": f"{count}\n{LANDMARKS}\n"
        + "".join(f"{n} {' '.join(f'{v:5d}' for v in row)}\n" for n, row in zip(names, landmarks, strict=True)),
    }


def _chunks(seed: int, count: int) -> Iterator[tuple[int, int, int]]:
    for start in range(0, count, CHUNK):
        yield seed, start, min(start + CHUNK, count)


def celeba_copy(folder: Path, count: int = CELEBA_COUNT, seed: int = 0, workers: int = 0) -> dict:
    """Write a synthetic CelebA into `folder` (the zip and the five annotation files); return the
    `prepare.celeba` values that describe it."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, text in _annotations(count, rng).items():
        (folder / name).write_text(text)
    with (
        zipfile.ZipFile(folder / ZIP_NAME, "w", zipfile.ZIP_STORED) as archive,  # JPEGs do not compress
        multiprocessing.Pool(workers or None) as pool,
        Progress(count, "synthetic CelebA", "img") as bar,
    ):
        number = 0
        for images in pool.imap(_faces, _chunks(seed, count)):
            for data in images:
                number += 1
                # a fixed timestamp: writestr(name) would stamp the clock, and the same seed must
                # give the same bytes whenever it runs
                entry = zipfile.ZipInfo(f"{IMAGE_DIR}/{number:06d}.jpg", date_time=ZIP_TIME)
                archive.writestr(entry, data, zipfile.ZIP_STORED)
            bar.update(len(images))
    checksums = {
        "zip_md5": ZIP_NAME,
        "partition_md5": PARTITION,
        "attributes_md5": ATTRIBUTES,
        "identity_md5": IDENTITY,
        "bbox_md5": "list_bbox_celeba.txt",
        "landmarks_md5": "list_landmarks_align_celeba.txt",
    }
    return {"image_count": count, **{key: file_md5(folder / name) for key, name in checksums.items()}}


def svhn_copy(folder: Path, counts: tuple[int, int] = SVHN_COUNTS, seed: int = 0) -> dict:
    """Write a synthetic SVHN's two .mat files into `folder`; return the `prepare.svhn` values that
    describe them (without mirrors: the rehearsal serves the folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1])
    values = {}
    for split, n in zip(("train", "test"), counts, strict=True):
        # smooth colour fields with noise: 32x32x3xN uint8, the official layout
        coarse = rng.integers(0, 256, (4, 4, 3, n), dtype=np.uint8)
        images = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)
        images = np.clip(images + rng.integers(-20, 21, images.shape, dtype=np.int16), 0, 255).astype(np.uint8)
        path = folder / f"{split}_32x32.mat"
        scipy.io.savemat(path, {"X": images, "y": rng.integers(1, 11, (n, 1), dtype=np.uint8)})
        values.update({f"{split}_md5": file_md5(path), f"{split}_count": n})
    return values


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for raw/celeba, mirror/ and synthetic_params.yaml")
    p.add_argument("--datasets", nargs="+", choices=("celeba", "svhn"), default=["celeba", "svhn"])
    p.add_argument("--celeba-count", type=int, default=CELEBA_COUNT)
    p.add_argument("--svhn-counts", type=int, nargs=2, default=SVHN_COUNTS, metavar=("TRAIN", "TEST"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="image-drawing processes; 0: one per CPU core")
    args = p.parse_args()
    if args.celeba_count < 3 or min(args.svhn_counts) < 1:
        p.error("need at least 3 CelebA images (one per split) and 1 SVHN image per split")
    sections = {}
    if "celeba" in args.datasets:
        sections["celeba"] = celeba_copy(args.out / "raw" / "celeba", args.celeba_count, args.seed, args.workers)
    if "svhn" in args.datasets:
        sections["svhn"] = svhn_copy(args.out / "mirror", tuple(args.svhn_counts), args.seed)
    params = args.out / "synthetic_params.yaml"
    params.write_text(yaml.safe_dump({"prepare": sections}, sort_keys=False))
    print(f"wrote {', '.join(sections)} under {args.out}; their prepare values in {params}")


if __name__ == "__main__":
    main()
