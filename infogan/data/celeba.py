"""CelebA from a hand-placed copy: verify it once, then crop, resize and store it as uint8 tensor splits.

CelebA cannot be downloaded reliably (its Google Drive files hit daily quotas), so the user places
torchvision's layout by hand under a raw folder the caller names:

    <raw_dir>/celeba/img_align_celeba/000001.jpg ... 202599.jpg   (or img_align_celeba.zip, extracted once)
    <raw_dir>/celeba/list_eval_partition.txt, list_attr_celeba.txt, identity_CelebA.txt,
                     list_bbox_celeba.txt, list_landmarks_align_celeba.txt

`verify_celeba` checks every file and reports all problems at once; `prepare_celeba` then writes
train/valid/test splits. This is library code: it knows nothing of DVC, params files or fixed paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import torch
from PIL import Image

from infogan.atomic import atomic_path, write_json
from infogan.config import Count, PositiveInt, Section, Text
from infogan.data.dataset import Dataset
from infogan.data.download import file_md5, looks_like_html
from infogan.data.images import save_split
from infogan.errors import InfoGANError
from infogan.progress import Progress

IMAGE_DIR = "img_align_celeba"
ZIP_NAME = "img_align_celeba.zip"
PARTITION = "list_eval_partition.txt"
ATTRIBUTES = "list_attr_celeba.txt"
IDENTITY = "identity_CelebA.txt"
SPLITS = ("train", "valid", "test")  # partition ids 0, 1, 2
_SHOWN = 5  # how many example names a problem lists
_CHUNK = 256  # images per worker task: large enough that task overhead is small, small for a smooth bar
DRIVE_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


class CelebaSource(Section):
    """What a genuine copy looks like, and how to prepare it (params section `prepare.celeba`, which
    holds the real CelebA values, checksums as in torchvision.datasets.CelebA); tests pass the values
    of a small fake copy."""

    image_size: Literal[32, 64]  # side of the prepared square images, the sizes the CelebA models use
    workers: Count  # decoding threads; 0 means one per CPU core
    image_count: PositiveInt
    image_width: PositiveInt
    image_height: PositiveInt
    zip_md5: Text
    partition_md5: Text
    attributes_md5: Text
    identity_md5: Text
    bbox_md5: Text
    landmarks_md5: Text
    neighbours: Count  # each training image's nearest training images prepare stores (neighbours.pt); 0: none

    def annotation_md5s(self) -> dict[str, str]:
        return {
            PARTITION: self.partition_md5,
            ATTRIBUTES: self.attributes_md5,
            IDENTITY: self.identity_md5,
            "list_bbox_celeba.txt": self.bbox_md5,
            "list_landmarks_align_celeba.txt": self.landmarks_md5,
        }

    def verification_settings(self) -> dict:
        """The fields a verification depends on (not image_size or workers, which only shape preparation)."""
        return self.model_dump(exclude={"image_size", "workers"})


def _examples(names: Sequence[str]) -> str:
    return ", ".join(names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")


def _likely_cause(path: Path, otherwise: str) -> str:
    """Guess from the first bytes why a file has the wrong checksum."""
    with open(path, "rb") as f:
        head = f.read(4096)
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0].lower()
    if not head:
        return "the file is empty (an interrupted download?)"
    if looks_like_html(head):
        return (
            "it is an HTML page, not the real file: probably a Google Drive quota or virus-scan warning page "
            "saved in its place. Download the file again (from the browser, once the quota resets)"
        )
    if b"\0" in head:  # binary: the text sniffs below would misread it
        return otherwise
    if first.startswith(b"image_id,") or (b"," in first and b" " not in first):
        return (
            "it is comma-separated, like the Kaggle copy of CelebA (e.g. list_attr_celeba.csv); this pipeline "
            f"needs the original space-separated .txt files from {DRIVE_URL}"
        )
    if b"\r\n" in head:
        return "it has Windows (CRLF) line endings: re-saved by an editor or git's autocrlf? Use the original file"
    return otherwise


def _checksum_problem(path: Path, expected: str, otherwise: str) -> str | None:
    actual = file_md5(path)
    if actual == expected:
        return None
    return f"{path} has MD5 {actual}, expected {expected}: {_likely_cause(path, otherwise)}."


def _extract_zip(celeba_dir: Path, source: CelebaSource, progress: bool) -> str | None:
    """Check the archive and extract it once; return a problem, or None once the image folder exists."""
    archive = celeba_dir / ZIP_NAME
    problem = _checksum_problem(
        archive,
        source.zip_md5,
        f"probably only partly downloaded ({archive.stat().st_size:,} bytes) or a different archive; download it again",
    )
    if problem:
        return problem
    # Extract beside, then rename: a half-finished extraction never has the final folder name.
    staging = celeba_dir / f".{IMAGE_DIR}.extracting"
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            with Progress(len(members), "extract CelebA", "file", enabled=progress) as bar:
                for member in members:
                    zf.extract(member, staging)
                    bar.update()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        return f"{archive} cannot be extracted ({err}): it is probably only partly downloaded; download it again."
    inner = staging / IMAGE_DIR  # the genuine zip holds one top folder, img_align_celeba/
    os.replace(inner if inner.is_dir() else staging, celeba_dir / IMAGE_DIR)
    shutil.rmtree(staging, ignore_errors=True)
    return None


def _read_partition(path: Path, expected: int) -> tuple[list[tuple[str, int]], list[str]]:
    """(name, split id) per line of the partition file, and the problems found."""
    lines = path.read_text(errors="replace").splitlines()
    entries, bad = [], []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith(".jpg") and parts[1] in ("0", "1", "2"):
            entries.append((parts[0], int(parts[1])))
        elif parts:
            bad.append(f"line {number}: {line[:60]!r}")
    if not entries and not bad:
        return [], [f"{path} is empty; place the genuine {PARTITION} there."]
    problems = []
    if bad:
        problems.append(f"{path} has {len(bad)} malformed line(s), expected '<name>.jpg <0|1|2>': {_examples(bad)}")
    if len(entries) != expected:
        problems.append(f"{path} lists {len(entries)} images, expected {expected}.")
    if len({name for name, _ in entries}) != len(entries):
        problems.append(f"{path} lists some images more than once.")
    return entries, problems


def _image_problem(path: Path, width: int, height: int) -> str | None:
    """Why the file is not a complete RGB JPEG of width x height, or None if it is."""
    try:
        with Image.open(path) as img:
            if img.format != "JPEG":
                return f"{path.name} (not a JPEG but {img.format})"
            if img.size != (width, height) or img.mode != "RGB":
                return f"{path.name} ({img.mode} {img.size[0]}x{img.size[1]}, expected RGB {width}x{height})"
            img.load()  # decodes every pixel: this is what finds a truncated file
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # UnidentifiedImageError is an OSError
        return f"{path.name} (cannot be decoded: {err})"
    return None


def _in_chunks(task: Callable[[int, list], object], items: list, workers: int, desc: str, progress: bool) -> list:
    """Run task(start, chunk) over consecutive chunks of items on a thread pool; results in order.

    Threads rather than processes: Pillow releases the GIL while it decodes and resizes, and
    threads can write straight into a shared output tensor with nothing pickled.
    """
    starts = range(0, len(items), _CHUNK)
    results = []
    with (
        ThreadPoolExecutor(workers or os.cpu_count()) as pool,
        Progress(len(items), desc, "img", enabled=progress) as bar,
    ):
        for start, result in zip(starts, pool.map(lambda s: task(s, items[s : s + _CHUNK]), starts), strict=True):
            results.append(result)
            bar.update(min(_CHUNK, len(items) - start))
    return results


def _listing_digest(image_dir: Path, names: Sequence[str]) -> str:
    """SHA-256 of each listed image's name, size and mtime: changes whenever any of them does."""
    digest = hashlib.sha256()
    for name in names:
        stat = os.stat(image_dir / name)
        digest.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _missing_folder_message(raw_dir: Path, celeba_dir: Path, source: CelebaSource) -> str:
    names = ", ".join(source.annotation_md5s())
    hint = ""
    if (raw_dir / IMAGE_DIR).exists() or (raw_dir / PARTITION).exists():
        hint = f"\n{raw_dir} itself looks like the celeba folder: pass its parent as the raw folder, or move it."
    return (
        f"CelebA not found: {celeba_dir} does not exist. To place it by hand:\n"
        f"  1. From {DRIVE_URL} (its Google Drive), download Img/{ZIP_NAME}, the four annotation files in Anno/ "
        f"and Eval/{PARTITION}.\n"
        f"  2. Create {celeba_dir} and put them in it: {ZIP_NAME}, {names}.\n"
        f"  3. Leave the zip there (it is checked and extracted once), or extract it yourself so the images "
        f"are {celeba_dir / IMAGE_DIR}/000001.jpg ... {source.image_count:06d}.jpg.\n"
        f"  4. Run again.{hint}"
    )


def _verify(raw_dir: Path, source: CelebaSource, progress: bool, manifest_path: Path | None):
    """verify_celeba's work; also returns the partition entries for prepare_celeba."""
    raw_dir = Path(raw_dir)
    celeba_dir = raw_dir / "celeba"
    if not celeba_dir.is_dir():
        raise InfoGANError(_missing_folder_message(raw_dir, celeba_dir, source))
    manifest_path = _manifest_path(raw_dir, manifest_path)
    image_dir, problems = celeba_dir / IMAGE_DIR, []
    if not image_dir.is_dir():
        if (celeba_dir / ZIP_NAME).is_file():
            problem = _extract_zip(celeba_dir, source, progress)
            problems += [problem] if problem else []
        else:
            problems.append(f"no images: neither {image_dir}/ nor {celeba_dir / ZIP_NAME} exists; place one of them.")
    partition_ok = False
    for name, expected in source.annotation_md5s().items():
        path = celeba_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing: place the genuine file at {path}.")
            continue
        problem = _checksum_problem(path, expected, "it is a different or damaged copy; place the genuine file")
        problems += [problem] if problem else []
        partition_ok |= name == PARTITION and problem is None
    entries: list[tuple[str, int]] = []
    if partition_ok:
        entries, partition_problems = _read_partition(celeba_dir / PARTITION, source.image_count)
        problems += partition_problems
    report = {"images": len(entries), "splits": {s: sum(e[1] == i for e in entries) for i, s in enumerate(SPLITS)}}
    if entries and image_dir.is_dir():
        present = {e.name for e in os.scandir(image_dir)}
        listed = [name for name, _ in entries]
        missing = [name for name in listed if name not in present]
        extras = sorted(present - set(listed))
        report.update(extra_files=len(extras), extra_examples=extras[:_SHOWN])
        if missing:
            problems.append(
                f"{len(missing)} of {len(listed)} images listed in {PARTITION} are missing from "
                f"{image_dir}: {_examples(missing)}."
            )
        else:
            # The settings hold every checksum: a manifest names the copy it verified.
            report.update(listing_sha256=_listing_digest(image_dir, listed), settings=source.verification_settings())
            if not _manifest_matches(manifest_path, report, _DECODE_KEYS):
                w, h = source.image_width, source.image_height

                def check(_: int, chunk: list[str]) -> list[str]:
                    return [p for p in (_image_problem(image_dir / n, w, h) for n in chunk) if p]

                found = _in_chunks(check, listed, source.workers, "verify CelebA", progress)
                bad = [problem for chunk in found for problem in chunk]
                if bad:
                    problems.append(
                        f"{len(bad)} of {len(listed)} images in {image_dir} are not complete RGB JPEGs "
                        f"of {w}x{h}: {_examples(bad)}. Replace them with genuine copies "
                        f"(e.g. extract {ZIP_NAME} again)."
                    )
    if problems:
        raise InfoGANError(
            f"CelebA in {celeba_dir} failed verification ({len(problems)} problem(s)):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    if not _manifest_matches(manifest_path, report):
        try:
            write_json(report, manifest_path)
        except OSError as err:  # e.g. the raw copy is on a read-only mount
            raise InfoGANError(
                f"cannot write the verification manifest {manifest_path} ({err}); pass a writable manifest_path"
            ) from err
    return report, entries


def _manifest_path(raw_dir: Path, manifest_path: Path | None) -> Path:
    return Path(manifest_path) if manifest_path else Path(raw_dir) / "celeba" / "verified.json"


# A manifest that agrees on these was written after a full decode of the same files.
_DECODE_KEYS = ("settings", "listing_sha256")


def _manifest_matches(path: Path, report: dict, keys: Sequence[str] | None = None) -> bool:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if keys is None:
        return manifest == report
    return isinstance(manifest, dict) and all(manifest.get(k) == report[k] for k in keys)


def verify_celeba(
    raw_dir: Path, source: CelebaSource, progress: bool = True, manifest_path: Path | None = None
) -> dict:
    """Check the hand-placed copy under raw_dir/celeba; return (and save) a small manifest of it.

    Annotation files are checked by MD5, the partition file by its format and count, and every
    listed image is decoded as an RGB JPEG of the expected size. All problems are collected and
    raised as one InfoGANError. Extra files in the image folder are allowed, and counted in the
    report. An img_align_celeba.zip is checked and extracted when the image folder is absent.

    The full decode is skipped when the manifest (default raw_dir/celeba/verified.json) matches:
    same settings, same checksums, and the same name, size and mtime for every listed image (as
    `make` and `rsync` judge a file unchanged). It stores only a SHA-256 of that listing, not the
    listing itself, so it stays a few hundred bytes, and DVC can depend on it instead of hashing
    202,599 JPEGs. A change that keeps a file's size and mtime would go unnoticed.
    """
    return _verify(raw_dir, source, progress, manifest_path)[0]


def _read_attributes(path: Path, names: list[str]) -> tuple[list[str], torch.Tensor]:
    """The attribute names, and int8 (N, A) of 0/1 for `names` in order (the file holds -1/1)."""
    lines = path.read_text().splitlines()
    columns = lines[1].split() if len(lines) > 1 else []
    rows = {line.split(maxsplit=1)[0]: line for line in lines[2:] if line.strip()}  # one string per row: compact
    packed, bad = bytearray(), []
    for name in names:
        values = rows.get(name, "").split()[1:]
        if columns and len(values) == len(columns) and set(values) <= {"1", "-1"}:
            packed += bytes(v == "1" for v in values)
        else:
            bad.append(name)
    if bad:
        raise InfoGANError(
            f"{path} has no row of {len(columns)} values of 1 or -1 for {len(bad)} image(s): "
            f"{_examples(bad)}. Place the genuine {ATTRIBUTES}."
        )
    return columns, torch.frombuffer(packed, dtype=torch.uint8).view(len(names), len(columns)).to(torch.int8)


def _read_identities(path: Path, names: list[str]) -> torch.Tensor:
    """int64 (N,) identity of each image in `names`, in order."""
    rows = dict(parts for line in path.read_text().splitlines() if len(parts := line.split()) == 2)
    bad = [name for name in names if not rows.get(name, "").isdigit()]
    if bad:
        raise InfoGANError(
            f"{path} has no identity for {len(bad)} image(s): {_examples(bad)}. Place the genuine {IDENTITY}."
        )
    return torch.tensor([int(rows[name]) for name in names], dtype=torch.int64)


def prepare_celeba(
    raw_dir: Path,
    out_dir: Path,
    source: CelebaSource,
    progress: bool = True,
    manifest_path: Path | None = None,
) -> dict:
    """Verify, then write out_dir/{train,valid,test}.pt and out_dir/attributes.pt; return a summary.

    Each image's central 178x178 square is resized to image_size x image_size: the same framing
    as the PyTorch DCGAN tutorial's Resize(64) + CenterCrop(64), which keeps the whole face. Labels
    in the splits are CelebA identities (int64, (N,)), because save_split/load_split take one
    label per image; the 40 binary attributes go to attributes.pt as {"names": [...],
    split: int8 (N, 40) of 0/1}. One split is held at a time, as uint8 (the largest, train, is
    0.5 GB at 32 px and 2 GB at 64 px); each is saved under a pending name, and all are renamed
    into place only once every one is written, so a failure leaves a previous out_dir as it was.
    """
    report, entries = _verify(raw_dir, source, progress, manifest_path)
    celeba_dir, out_dir, size = Path(raw_dir) / "celeba", Path(out_dir), source.image_size
    names = [name for name, _ in entries]
    attribute_names, attributes = _read_attributes(celeba_dir / ATTRIBUTES, names)
    identities = _read_identities(celeba_dir / IDENTITY, names)
    side = min(source.image_width, source.image_height)
    left, top = (source.image_width - side) // 2, (source.image_height - side) // 2
    box = (left, top, left + side, top + side)

    # One split in memory at a time (uint8), each saved under a pending name; the final names are
    # given only once every split is written, so a failure leaves a previous out_dir as it was.
    out_dir.mkdir(parents=True, exist_ok=True)
    pending: dict[Path, Path] = {}
    counts, split_attributes = {}, {}
    try:
        for split_id, split in enumerate(SPLITS):
            index = [i for i, (_, s) in enumerate(entries) if s == split_id]
            images = torch.empty((len(index), 3, size, size), dtype=torch.uint8)  # (N, 3, S, S), filled in place

            def decode(start: int, chunk: list[int], images: torch.Tensor = images) -> None:
                for row, i in enumerate(chunk, start):
                    path = celeba_dir / IMAGE_DIR / names[i]
                    try:
                        with Image.open(path) as img:
                            small = img.convert("RGB").crop(box).resize((size, size), Image.Resampling.BICUBIC)
                    except (OSError, ValueError) as err:
                        raise InfoGANError(
                            f"{path} cannot be decoded ({err}), though the manifest says it was verified: it "
                            f"changed since, keeping its size and mtime. Delete "
                            f"{_manifest_path(raw_dir, manifest_path)} to verify every image again, and run again."
                        ) from err
                    pixels = torch.frombuffer(bytearray(small.tobytes()), dtype=torch.uint8)
                    images[row] = pixels.view(size, size, 3).permute(2, 0, 1)  # HWC -> CHW

            _in_chunks(decode, index, source.workers, f"prepare CelebA {split}", progress)
            rows = torch.tensor(index, dtype=torch.int64)
            final = out_dir / f"{split}.pt"
            pending[final] = out_dir / f".{split}.pending.pt"
            save_split(images, identities[rows], pending[final])
            counts[split], split_attributes[split] = len(index), attributes[rows]
            del images  # before the next split is decoded
        final = out_dir / "attributes.pt"
        pending[final] = out_dir / ".attributes.pending.pt"
        with atomic_path(pending[final]) as tmp:
            torch.save({"names": attribute_names, **split_attributes}, tmp)
        for final, path in pending.items():
            os.replace(path, final)
    finally:
        for path in pending.values():
            path.unlink(missing_ok=True)
    return {"splits": counts, "image_size": size, "attributes": attribute_names, "verification": report}


def load_attributes(path: Path, split: str, count: int) -> torch.Tensor:
    """The binary attributes of `split`, (count, n_attributes), from the attributes.pt that
    `prepare_celeba` wrote into the prepared folder."""
    try:
        attributes = torch.load(path, map_location="cpu", weights_only=True)[split]
    except (OSError, RuntimeError, KeyError, TypeError) as err:
        raise InfoGANError(f"{path} holds no {split} attributes ({type(err).__name__}); rerun prepare") from err
    if not isinstance(attributes, torch.Tensor) or attributes.dim() != 2 or len(attributes) != count:
        raise InfoGANError(f"{path} does not hold one row of attributes per {split} image; rerun prepare")
    return attributes


def verify(source: CelebaSource, raw_dir: Path) -> dict:
    """Check the copy placed by hand under raw_dir/celeba; the record of what was verified."""
    return {"dataset": "celeba", **verify_celeba(raw_dir, source)}


def prepare(source: CelebaSource, raw_dir: Path, out_dir: Path) -> dict:
    """Verify (quick while its manifest matches), then write the splits and attributes; their manifest."""
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


DATASET = Dataset(
    name="celeba",
    source=CelebaSource,
    verify=verify,
    prepare=prepare,
    class_labels=False,
    metrics=("information", "final_losses", "attributes"),
)
