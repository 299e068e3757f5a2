"""The synthetic copies have the real layout (the real verify accepts them), and the rehearsal runs the
real stages on them twice, in a throwaway copy of the project, and prints each stage's figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import scipy.io
import yaml

from benchmarks.synthetic_copies import (
    CELEBA_COUNT,
    CELEBA_SPLITS,
    ZIP_NAME,
    ZIP_TIME,
    celeba_copy,
    split_sizes,
    svhn_copy,
)
from infogan.data.celeba import CelebaSource, verify_celeba
from infogan.data.svhn import SvhnSource, load_svhn_split
from tests.pipeline.project_copy import attempt

ROOT = Path(__file__).resolve().parents[2]


def test_the_real_partition_for_the_real_count_and_its_shares_otherwise():
    assert split_sizes(CELEBA_COUNT) == CELEBA_SPLITS == (162_770, 19_867, 19_962)
    assert split_sizes(1000) == (803, 98, 99)


def test_the_real_verify_accepts_a_small_synthetic_celeba(tmp_path):
    values = celeba_copy(tmp_path / "celeba", count=40, seed=3, workers=1)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["prepare"]["celeba"]
    source = CelebaSource(**{**params, **values, "workers": 1})
    report = verify_celeba(tmp_path, source, progress=False)
    assert report["images"] == 40 and report["splits"] == {"train": 32, "valid": 4, "test": 4}
    lines = (tmp_path / "celeba/list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "40" and len(lines[1].split()) == 40 and lines[2].split()[0] == "000001.jpg"
    assert celeba_copy(tmp_path / "again", count=40, seed=3, workers=2) == values  # the same bytes, any workers
    with zipfile.ZipFile(tmp_path / "celeba" / ZIP_NAME) as archive:  # not the clock's time, which would
        assert {entry.date_time for entry in archive.infolist()} == {ZIP_TIME}  # change the bytes


def test_a_small_synthetic_svhn_has_the_official_layout(tmp_path):
    values = svhn_copy(tmp_path, counts=(30, 10))
    mat = scipy.io.loadmat(tmp_path / "train_32x32.mat")
    assert mat["X"].shape == (32, 32, 3, 30) and mat["y"].shape == (30, 1)
    assert values["train_count"] == 30 and values["test_count"] == 10
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["prepare"]["svhn"]
    images, labels = load_svhn_split(tmp_path, "test", SvhnSource(**{**params, **values}))
    assert images.shape == (10, 3, 32, 32) and 0 <= int(labels.min()) <= int(labels.max()) <= 9


@pytest.mark.slow  # four DVC stages, twice
def test_the_rehearsal_runs_verify_and_prepare_twice_and_leaves_the_repository_alone(tmp_path, repository_state):
    copies = tmp_path / "copies"
    make = ["--out", str(copies), "--datasets", "celeba", "--celeba-count", "30", "--workers", "1"]
    subprocess.run([sys.executable, str(ROOT / "benchmarks/synthetic_copies.py"), *make], cwd=ROOT, check=True)
    before = repository_state()
    rehearse = ["--copies", str(copies), "--work", str(tmp_path), "--datasets", "celeba", "--until", "prepare"]
    result = attempt([sys.executable, str(ROOT / "benchmarks/rehearsal.py"), *rehearse], ROOT, dict(os.environ), 900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert repository_state() == before
    table = result.stdout.split("\n\n")[1].splitlines()  # the summary after the live rows
    row = r"celeba  {:9s} {:16s} {:7s} +[\d.]+ s  peak +\d+ MiB  disk +[+-][\d.]+ MiB"
    expected = [
        ("first", "check_params", "ran"),
        ("first", "verify@celeba", "ran"),
        ("first", "prepare@celeba", "ran"),
        ("unchanged", "check_params", "ran"),
        ("unchanged", "verify@celeba", "ran"),  # always run: quick while nothing changed
        ("unchanged", "prepare@celeba", "skipped"),
    ]
    assert len(table) == len(expected)
    for line, (label, stage, ran) in zip(table, expected, strict=True):
        assert re.fullmatch(row.format(label, stage, ran), line), line
    assert list(tmp_path.glob("infogan-rehearsal-*")) == []  # the project copies are gone
