"""Atomic file writes: write beside the target, then rename, so no reader sees a half-written file.

A write that the machine refuses (a full disk, a read-only folder) removes its partial file and
becomes one `InfoGANError` that names the path and what to free or fix (`cannot_write`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infogan.errors import InfoGANError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def cannot_write(path: Path, err: OSError) -> InfoGANError:
    """The user's error for an `OSError` met writing `path`: what happened and what to do."""
    path = Path(path)
    if err.errno in NO_SPACE:
        return InfoGANError(
            f"no space left to write {path} ({err.strerror}); free space on the disk that holds "
            f"{path.parent} (df -h {path.parent}) and run again"
        )
    if err.errno in NOT_WRITABLE:
        folder = Path(err.filename).parent if err.filename else path.parent
        return InfoGANError(f"cannot write {path} ({err.strerror}); make {folder} writable and run again")
    return InfoGANError(f"cannot write {path} ({err.strerror or err})")


def partial_path(path: Path) -> Path:
    """The temporary name beside `path` that a write goes to first (same suffix, so format sniffing works)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield `partial_path(path)`; rename it to `path` on success. The temporary file is removed
    whatever happens; an `OSError` becomes `cannot_write`'s error."""
    path = Path(path)
    tmp = partial_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise cannot_write(path, err) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_json(data: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
