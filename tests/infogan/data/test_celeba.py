"""Tests for infogan.data.celeba: verifying and preparing a hand-placed CelebA copy.

Every test builds a tiny fake copy (30 random 178x218 JPEGs and generated annotation files) in
tmp_path, and passes the checksums of those fake files through CelebaSource.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

import infogan.data.celeba as celeba
from infogan.data.celeba import CelebaSource, prepare_celeba, verify_celeba
from infogan.data.download import file_md5
from infogan.data.images import load_split
from infogan.errors import InfoGANError
from pipeline.params import shipped_source

N = 30
SPLIT_OF = [0] * 20 + [1] * 5 + [2] * 5  # partition id of image i + 1
ATTRIBUTE_NAMES = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive"] + [f"Attr_{i}" for i in range(3, 40)]
NAMES = [f"{i:06d}.jpg" for i in range(1, N + 1)]
ANNOTATIONS = {
    "partition_md5": "list_eval_partition.txt",
    "attributes_md5": "list_attr_celeba.txt",
    "identity_md5": "identity_CelebA.txt",
    "bbox_md5": "list_bbox_celeba.txt",
    "landmarks_md5": "list_landmarks_align_celeba.txt",
}
HTML_PAGE = "<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head></html>\n"


def attribute(i: int, j: int) -> int:
    return 1 if (i * 7 + j * 3) % 5 < 2 else -1


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A raw folder holding a good fake copy at raw/celeba; tests work on copies of it."""
    celeba_dir = tmp_path_factory.mktemp("template") / "raw" / "celeba"
    (celeba_dir / "img_align_celeba").mkdir(parents=True)
    rng = random.Random(0)
    for name in NAMES:
        Image.frombytes("RGB", (178, 218), rng.randbytes(178 * 218 * 3)).save(celeba_dir / "img_align_celeba" / name)
    (celeba_dir / "list_eval_partition.txt").write_text(
        "".join(f"{n} {s}\n" for n, s in zip(NAMES, SPLIT_OF, strict=True))
    )
    rows = [f"{n} " + " ".join(f"{attribute(i, j):2d}" for j in range(40)) for i, n in enumerate(NAMES)]
    (celeba_dir / "list_attr_celeba.txt").write_text(f"{N}\n" + " ".join(ATTRIBUTE_NAMES) + "\n" + "\n".join(rows))
    (celeba_dir / "identity_CelebA.txt").write_text("".join(f"{n} {100 + i}\n" for i, n in enumerate(NAMES)))
    (celeba_dir / "list_bbox_celeba.txt").write_text("image_id x_1 y_1 width height\n")
    (celeba_dir / "list_landmarks_align_celeba.txt").write_text(f"{N}\nlefteye_x lefteye_y\n")
    return celeba_dir.parent


@pytest.fixture
def raw(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template, tmp_path / "raw")
    return tmp_path / "raw"


def source_for(raw: Path, **changes) -> CelebaSource:
    """The checksums and counts of the fake copy in raw, as a real run has them for the real copy."""
    sums = {key: file_md5(raw / "celeba" / name) for key, name in ANNOTATIONS.items()}
    return shipped_source("celeba", **{"image_count": N, "workers": 2, **sums, **changes})


def verify(raw: Path, **changes) -> dict:
    return verify_celeba(raw, source_for(raw, **changes), progress=False)


def failure(raw: Path, **changes) -> str:
    with pytest.raises(InfoGANError) as info:
        verify(raw, **changes)
    return str(info.value)


def image(raw: Path, name: str) -> Path:
    return raw / "celeba" / "img_align_celeba" / name


def make_zip(raw: Path) -> Path:
    """Replace the image folder by img_align_celeba.zip, laid out like the genuine archive."""
    folder, archive = raw / "celeba" / "img_align_celeba", raw / "celeba" / "img_align_celeba.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in NAMES:
            zf.write(folder / name, f"img_align_celeba/{name}")
    shutil.rmtree(folder)
    return archive


# --- good copies --------------------------------------------------------------------------------


def test_defaults_are_torchvisions_checksums_and_the_real_counts() -> None:
    from torchvision.datasets import CelebA

    expected = {name: md5 for _, md5, name in CelebA.file_list}
    source = shipped_source("celeba")
    assert source.zip_md5 == expected["img_align_celeba.zip"]
    assert source.annotation_md5s() == {name: expected[name] for name in ANNOTATIONS.values()}
    assert (source.image_count, source.image_width, source.image_height, source.image_size) == (202599, 178, 218, 32)


def test_good_copy_verifies_and_writes_manifest(raw: Path) -> None:
    report = verify(raw)
    assert report["images"] == N and report["splits"] == {"train": 20, "valid": 5, "test": 5}
    assert report["extra_files"] == 0
    assert report["settings"]["attributes_md5"] == file_md5(raw / "celeba" / "list_attr_celeba.txt")
    assert report["settings"]["zip_md5"] == "00d2c5bc6d35e252742224ab0c1e8fcb"
    manifest = raw / "celeba" / "verified.json"
    assert manifest.is_file() and manifest.stat().st_size < 2000


@pytest.mark.parametrize("size", [32, 64])
def test_prepare_writes_cropped_resized_splits(raw: Path, tmp_path: Path, size: int) -> None:
    out = tmp_path / "prepared"
    summary = prepare_celeba(raw, out, source_for(raw, image_size=size), progress=False)
    assert summary["splits"] == {"train": 20, "valid": 5, "test": 5}
    assert summary["attributes"] == ATTRIBUTE_NAMES
    attributes = torch.load(out / "attributes.pt", weights_only=True)
    offset = 0
    for split, count in summary["splits"].items():
        images, labels = load_split(out / f"{split}.pt")
        assert images.shape == (count, 3, size, size) and images.dtype == torch.uint8
        assert labels.tolist() == list(range(100 + offset, 100 + offset + count))  # identities
        attrs = attributes[split]
        assert attrs.shape == (count, 40) and attrs.dtype == torch.int8
        assert attrs[0].tolist() == [int(attribute(offset, j) == 1) for j in range(40)]
        offset += count
    # The first valid image, cropped to its central 178x178 square and resized by hand:
    with Image.open(image(raw, NAMES[20])) as img:
        expected = img.crop((0, 20, 178, 198)).resize((size, size), Image.Resampling.BICUBIC)
    valid, _ = load_split(out / "valid.pt")
    assert valid[0].permute(1, 2, 0).flatten().tolist() == list(expected.tobytes())


def test_zip_is_checked_and_extracted_once(raw: Path) -> None:
    archive = make_zip(raw)
    assert verify(raw, zip_md5=file_md5(archive))["images"] == N
    folder = raw / "celeba" / "img_align_celeba"
    assert sorted(p.name for p in folder.iterdir()) == NAMES
    assert sorted(p.name for p in (raw / "celeba").iterdir() if p.name.startswith(".")) == []  # no staging left
    inode = folder.stat().st_ino
    archive.write_bytes(b"junk")  # never read again once the folder exists
    verify(raw, zip_md5=hashlib.md5(b"other").hexdigest())
    assert folder.stat().st_ino == inode


def test_extra_files_are_reported_but_allowed(raw: Path) -> None:
    image(raw, "notes.txt").write_text("mine")
    image(raw, ".DS_Store").write_bytes(b"\0")
    report = verify(raw)
    assert report["extra_files"] == 2 and report["extra_examples"] == [".DS_Store", "notes.txt"]


def test_repeat_verification_reuses_manifest_until_a_file_changes(raw: Path, monkeypatch) -> None:
    verify(raw)
    decoded = []
    original = celeba._image_problem
    monkeypatch.setattr(celeba, "_image_problem", lambda path, w, h: decoded.append(path) or original(path, w, h))
    verify(raw)
    assert decoded == []  # nothing decoded: the manifest matched
    image(raw, "notes.txt").write_text("an extra file does not force a new decode")
    verify(raw)
    assert decoded == []
    stat = image(raw, NAMES[4]).stat()
    os.utime(image(raw, NAMES[4]), ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    verify(raw)
    assert len(decoded) == N
    path = image(raw, NAMES[4])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "000005.jpg" in failure(raw)  # a file broken after a good verification is caught


# --- bad copies -----------------------------------------------------------------------------------


def test_missing_folder_says_where_to_place_what(tmp_path: Path) -> None:
    with pytest.raises(InfoGANError) as info:
        verify_celeba(tmp_path / "raw", shipped_source("celeba"), progress=False)
    message = str(info.value)
    assert f"{tmp_path / 'raw' / 'celeba'} does not exist" in message
    for part in (
        "1. ",
        "2. ",
        "3. ",
        "img_align_celeba.zip",
        "list_eval_partition.txt",
        "identity_CelebA.txt",
        "img_align_celeba/000001.jpg ... 202599.jpg",
    ):
        assert part in message


def test_celeba_folder_passed_as_raw_folder_gets_a_hint(raw: Path) -> None:
    with pytest.raises(InfoGANError, match="looks like the celeba folder: pass its parent"):
        verify_celeba(raw / "celeba", source_for(raw), progress=False)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:2000]), "000007.jpg (cannot be decoded: image file is truncated"),
        (
            lambda p: Image.new("RGB", (100, 100)).save(p, format="JPEG"),
            "000007.jpg (RGB 100x100, expected RGB 178x218)",
        ),
        (lambda p: Image.new("L", (178, 218)).save(p, format="JPEG"), "000007.jpg (L 178x218, expected RGB"),
        (lambda p: Image.new("RGB", (178, 218)).save(p, format="PNG"), "000007.jpg (not a JPEG but PNG)"),
        (lambda p: p.write_text("not an image"), "000007.jpg (cannot be decoded: cannot identify image file"),
    ],
    ids=["truncated", "wrong-size", "grayscale", "png", "not-an-image"],
)
def test_bad_image_is_named(raw: Path, damage, expected: str) -> None:
    damage(image(raw, NAMES[6]))
    message = failure(raw)
    assert "1 of 30 images" in message and expected in message


def test_all_bad_images_and_problems_are_collected(raw: Path) -> None:
    for name in NAMES[:8]:
        path = image(raw, name)
        path.write_bytes(path.read_bytes()[:1000])
    bbox = raw / "celeba" / "list_bbox_celeba.txt"
    sums = source_for(raw)
    bbox.write_text(bbox.read_text() + "extra\n")
    with pytest.raises(InfoGANError) as info:
        verify_celeba(raw, sums, progress=False)
    message = str(info.value)
    assert "2 problem(s)" in message and "8 of 30 images" in message
    assert "000001.jpg" in message and "000005.jpg" in message and "000006.jpg" not in message and ", ..." in message
    assert f"has MD5 {file_md5(bbox)}, expected {sums.bbox_md5}: it is a different or damaged copy" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (HTML_PAGE, "it is an HTML page, not the real file: probably a Google Drive quota"),
        ("image_id,5_o_Clock_Shadow,Arched_Eyebrows\n000001.jpg,-1,1\n", "like the Kaggle copy of CelebA"),
        ("", "the file is empty"),
        ("000001.jpg 0\r\n", "Windows (CRLF) line endings"),
    ],
    ids=["html", "kaggle-csv", "empty", "crlf"],
)
@pytest.mark.parametrize("name", ["list_attr_celeba.txt", "list_eval_partition.txt"])
def test_wrong_checksum_names_file_sums_and_likely_cause(raw: Path, name: str, content: str, expected: str) -> None:
    sums = source_for(raw)
    path = raw / "celeba" / name
    path.write_text(content, newline="")
    with pytest.raises(InfoGANError) as info:
        verify_celeba(raw, sums, progress=False)
    message = str(info.value)
    assert f"{path} has MD5 {hashlib.md5(content.encode()).hexdigest()}, expected " in message
    assert expected in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "list_eval_partition.txt is empty"),
        ("".join(f"{n} 0\n" for n in NAMES[:-1]), "lists 29 images, expected 30"),
        ("".join(f"{n} 0\n" for n in NAMES[:-1]) + "000030.jpg train\n", "1 malformed line(s), expected '<name>.jpg"),
        ("".join(f"{n} 0\n" for n in NAMES[:-1]) + "000001.jpg 0\n", "lists some images more than once"),
    ],
    ids=["empty", "short", "malformed", "duplicate"],
)
def test_partition_content_is_checked(raw: Path, content: str, expected: str) -> None:
    (raw / "celeba" / "list_eval_partition.txt").write_text(content)
    assert expected in failure(raw)  # checksums taken from the damaged file: only the content check can fail


def test_listed_image_missing(raw: Path) -> None:
    image(raw, NAMES[11]).unlink()
    assert "1 of 30 images listed in list_eval_partition.txt are missing from" in failure(raw)
    assert "000012.jpg" in failure(raw)


def test_missing_annotation_file_and_images(raw: Path) -> None:
    sums = source_for(raw)
    (raw / "celeba" / "identity_CelebA.txt").unlink()
    shutil.rmtree(raw / "celeba" / "img_align_celeba")
    with pytest.raises(InfoGANError) as info:
        verify_celeba(raw, sums, progress=False)
    message = str(info.value)
    path = raw / "celeba" / "identity_CelebA.txt"
    assert f"identity_CelebA.txt is missing: place the genuine file at {path}" in message
    assert "no images: neither" in message


def test_partly_downloaded_zip(raw: Path) -> None:
    archive = make_zip(raw)
    full_md5 = file_md5(archive)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    message = failure(raw, zip_md5=full_md5)
    assert f"has MD5 {file_md5(archive)}, expected {full_md5}: probably only partly downloaded" in message
    # Even with a matching checksum, an unreadable archive is reported and leaves nothing half-extracted.
    assert "cannot be extracted" in failure(raw, zip_md5=file_md5(archive))
    assert sorted(p.name for p in (raw / "celeba").iterdir() if "img_align" in p.name) == ["img_align_celeba.zip"]


def test_image_size_must_be_32_or_64() -> None:
    with pytest.raises(InfoGANError, match=r"prepare\.celeba\.image_size = 48 is invalid: it must be one of 32, 64$"):
        shipped_source("celeba", image_size=48)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:3000])  # verification sees the new size and decodes again


def same_size_garbage(path: Path) -> None:
    stat = path.stat()
    path.write_bytes(b"x" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the manifest still matches: found while preparing


@pytest.mark.parametrize(
    ("damage", "expected"),
    [(truncate, "failed verification"), (same_size_garbage, "though the manifest says it was verified")],
    ids=["verification", "preparation"],
)
def test_failed_prepare_leaves_previous_output_untouched(raw: Path, tmp_path: Path, damage, expected: str) -> None:
    out = tmp_path / "prepared"
    prepare_celeba(raw, out, source_for(raw), progress=False)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert sorted(before) == ["attributes.pt", "test.pt", "train.pt", "valid.pt"]
    damage(image(raw, NAMES[25]))  # in the test split, decoded after train and valid
    with pytest.raises(InfoGANError, match=expected) as info:
        prepare_celeba(raw, out, source_for(raw), progress=False)
    assert "000026.jpg" in str(info.value)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
