"""Atomic writes when the machine refuses them: a full disk or a read-only folder becomes one error
that names the path and what to do, the partial file is removed, and the file already there stays."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from infogan.atomic import atomic_path, write_json
from infogan.errors import InfoGANError
from infogan.training.checkpoint import save_atomically


def partial_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if ".partial" in path.name]


def test_a_full_disk_mid_write_names_the_path_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "reports" / "metrics.json"
    target.parent.mkdir()
    target.write_text("the last good one")

    def fills_the_disk(self: Path, text: str, *args, **kwargs) -> int:
        with self.open("w") as handle:
            handle.write(text[:5])  # what fit
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", fills_the_disk)
    with pytest.raises(InfoGANError) as refused:
        write_json({"accuracy": 0.97}, target)
    assert str(refused.value) == (
        f"no space left to write {target} (No space left on device); free space on the disk that holds "
        f"{target.parent} (df -h {target.parent}) and run again"
    )
    monkeypatch.undo()
    assert target.read_text() == "the last good one"
    assert partial_files(tmp_path) == []


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS, errno.EPERM])
def test_a_folder_that_cannot_be_written_says_which_to_make_writable(tmp_path, monkeypatch, code):
    target = tmp_path / "media" / "categorical_0.gif"
    target.parent.mkdir()
    target.write_bytes(b"the last good one")

    def refused_rename(source, destination):
        raise OSError(code, os.strerror(code), str(source))

    monkeypatch.setattr(os, "replace", refused_rename)
    with pytest.raises(InfoGANError) as refused, atomic_path(target) as tmp:
        tmp.write_bytes(b"GIF89a...")
    monkeypatch.undo()
    advice = f"make {target.parent} writable and run again"
    assert str(refused.value) == f"cannot write {target} ({os.strerror(code)}); {advice}"
    assert target.read_bytes() == b"the last good one"
    assert partial_files(tmp_path) == []


def test_another_os_error_still_names_the_path(tmp_path, monkeypatch):
    target = tmp_path / "history.csv"

    def failing_rename(source, destination):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", failing_rename)
    expected = r"^cannot write .*history.csv \(Input/output error\)$"
    with pytest.raises(InfoGANError, match=expected), atomic_path(target) as tmp:
        tmp.write_text("epoch\n")
    assert partial_files(tmp_path) == []


class FullDiskTrainer:
    """What `save_atomically` needs of a Trainer, on a disk that fills up a megabyte into the checkpoint."""

    is_global_zero = True

    def save_checkpoint(self, path: Path, weights_only: bool = False) -> None:
        Path(path).write_bytes(b"\0" * 1_000_000)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))


def test_a_checkpoint_that_does_not_fit_leaves_no_partial_file(tmp_path):
    target = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(InfoGANError, match=r"^no space left to write .*last\.ckpt \(No space left on device\)"):
        save_atomically(FullDiskTrainer(), target)
    assert partial_files(tmp_path) == [] and not target.exists()
