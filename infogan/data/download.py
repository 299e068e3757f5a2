"""Verified downloads of a dataset's raw files: try each mirror until a file matches its MD5.

Dataset-independent: a dataset module passes its `{file name: md5}` table, a display name for
messages, the raw directory and the mirror list. A file gets its final name only once its MD5
matches, so a half-written or corrupt download never looks like a finished one. A file that is
already present (downloaded earlier or placed by hand) is verified too, and used without any
network access; a mismatching one is moved aside to `<name>.bad` (`<name>.bad.1`, ... when an
earlier bad copy is there), never silently replaced. A gzip file whose bytes differ but whose
decompressed content matches a known content digest (the genuine file gunzipped and gzipped again)
is accepted as it is.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from infogan.atomic import atomic_path
from infogan.errors import InfoGANError
from infogan.progress import Progress

_CHUNK = 1 << 16
# Some mirrors answer 403 to Python's default User-Agent.
_USER_AGENT = "infogan-pipeline"
_MD5_PATTERN = re.compile(r"[0-9a-f]{32}")


def file_md5(path: Path) -> str:
    """Hex MD5 of a file, read in chunks so large files need little memory."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def gunzipped_md5(path: Path) -> str | None:
    """Hex MD5 of a gzip file's decompressed content, or None if it is no complete gzip file."""
    digest = hashlib.md5()
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):  # not gzip (BadGzipFile is an OSError), truncated, damaged
        return None
    return digest.hexdigest()


def _same_content(path: Path, content_md5: str | None) -> bool:
    """Whether the gzip file at `path` decompresses to the content of MD5 `content_md5` (if known):
    gunzip and gzip again change the bytes (the name, time and level in the header, the compressor)
    but not the data."""
    return content_md5 is not None and gunzipped_md5(path) == content_md5


def _set_aside(path: Path) -> Path:
    """Move a bad file to the first free one of <name>.bad, <name>.bad.1, ...: an earlier bad copy is kept."""
    target, n = path.with_name(path.name + ".bad"), 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.bad.{n}")
    os.replace(path, target)
    return target


def looks_like_html(head: bytes) -> bool:
    """Whether a file's first bytes are a web page (an error, login or quota page saved under its name)."""
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")) or b"<html" in head[:1024]


def check_mirrors(mirrors: Sequence[str], dataset: str) -> None:
    """Reject anything but a list of http(s) URLs, before touching the disk or the network."""
    if isinstance(mirrors, str):  # a lone string would be iterated character by character
        raise InfoGANError(f"{dataset} mirrors must be a list of URLs, got the single string {mirrors!r}")
    for mirror in mirrors:
        parts = urllib.parse.urlsplit(str(mirror))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InfoGANError(
                f"{dataset} mirror {mirror!r} is not an http:// or https:// URL; "
                "only http(s) mirrors are supported. Fix the mirror list."
            )


def _check_files(files: Mapping[str, str], dataset: str) -> None:
    """Each entry must be a bare file name (it is joined to the raw dir and to each mirror) and an MD5."""
    for name, md5 in files.items():
        if not name or Path(name).name != name or name in (".", ".."):
            raise InfoGANError(f"{dataset} file name {name!r} must be a bare file name, without any directory")
        if not isinstance(md5, str) or not _MD5_PATTERN.fullmatch(md5):
            raise InfoGANError(f"{dataset} file {name}: {md5!r} is not an MD5 (32 lower-case hex digits)")


def _md5_list(files: Mapping[str, str]) -> str:
    return "\n".join(f"  {md5}  {name}" for name, md5 in files.items())


def _manual_hint(raw_dir: Path, name: str, files: Mapping[str, str], dataset: str) -> str:
    return (
        f"To proceed without a mirror, place the genuine file by hand at {raw_dir / name} "
        f"(expected MD5 {files[name]}). Standard MD5s of the {dataset} files:\n{_md5_list(files)}"
    )


def _file_url(mirror: str, name: str) -> str:
    return mirror.rstrip("/") + "/" + name


def _describe(err: BaseException) -> str:
    """A short, human-readable reason for a failed download."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"network error: {err.reason}"
    if isinstance(err, TimeoutError):
        return "timed out"
    return f"{type(err).__name__}: {err}"


def _download(url: str, part: Path, timeout_s: float, progress: bool) -> str:
    """Stream url into part, returning the MD5 of what was written."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest, received = hashlib.md5(), 0
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with (
            open(part, "wb") as out,
            Progress(total, part.stem, "B", unit_scale=True, enabled=progress) as bar,
        ):
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    # http.client returns a short body silently when the peer hangs up; name it plainly.
    if total is not None and received != total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")
    return digest.hexdigest()


def _quarantine_bad_files(raw_dir: Path, files: Mapping[str, str], dataset: str, content: Mapping[str, str]) -> None:
    """Verify files already present; move mismatching ones aside to <name>.bad (or .bad.1, ...) and raise."""
    problems = []
    for name, expected in files.items():
        path = raw_dir / name
        if not path.is_file():
            continue
        actual = file_md5(path)
        if actual == expected or _same_content(path, content.get(name)):
            continue
        # Rename rather than delete: the user's file is kept, but no later run trusts it.
        moved = _set_aside(path)
        problems.append(
            f"{path}: expected MD5 {expected}, got {actual}; moved it to {moved.name}. "
            f"Place the genuine file at {path}."
        )
    if problems:
        raise InfoGANError(
            f"{dataset} file(s) already in the raw directory failed the checksum:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nOnce the bad file is out of the way, a rerun downloads it from the mirrors; "
            f"or place the genuine file by hand. Standard MD5s:\n{_md5_list(files)}"
        )


def _gzip_genuine_plain_copy(raw_dir: Path, name: str, content_md5: str | None) -> str | None:
    """Where raw_dir holds the gzip file `name` only uncompressed (gunzipped by the user: `name`
    without .gz), gzip it to `name` when its content is the genuine one (`content_md5`), saying so,
    and leave the uncompressed file as it was. Return why it was not used when it is not genuine,
    else None."""
    plain = raw_dir / name.removesuffix(".gz")
    if content_md5 is None or plain.name == name or not plain.is_file():
        return None
    actual = file_md5(plain)
    if actual != content_md5:
        return f"{plain} is there uncompressed, but its MD5 is {actual}, not the genuine content's {content_md5}"
    with (
        atomic_path(raw_dir / name) as tmp,
        open(plain, "rb") as source,
        open(tmp, "wb") as out,
        gzip.GzipFile(fileobj=out, mode="wb", filename="", mtime=0) as packed,
    ):
        shutil.copyfileobj(source, packed, _CHUNK)
    print(f"{plain} is {name} uncompressed, with the genuine content (MD5 {content_md5}): gzipped it to {name}")
    return None


def _fetch_one(
    raw_dir: Path,
    name: str,
    files: Mapping[str, str],
    mirrors: Sequence[str],
    dataset: str,
    timeout_s: float,
    progress: bool,
    content: Mapping[str, str],
    found: str | None = None,
) -> None:
    """Try each mirror in turn until a download of name matches its MD5 (or its content digest).
    `found`: what is wrong with a copy of the file in the raw folder, said in the error."""
    expected = files[name]
    final, part = raw_dir / name, raw_dir / (name + ".part")
    failures = []
    for mirror in mirrors:
        url = _file_url(mirror, name)
        try:
            actual = _download(url, part, timeout_s, progress)
        except (OSError, http.client.HTTPException, ValueError) as err:
            part.unlink(missing_ok=True)
            failures.append(f"{url}: {_describe(err)}")
            continue
        if actual == expected or _same_content(part, content.get(name)):
            os.replace(part, final)  # atomic: the final name only ever holds a verified file
            return
        part.unlink(missing_ok=True)
        failures.append(f"{url}: checksum mismatch: expected {expected}, got {actual}")
    tried = "\n".join(f"  - {f}" for f in failures) if failures else "  (no mirrors configured)"
    raise InfoGANError(
        f"Could not download {dataset} file {name} from any mirror. Mirrors tried:\n{tried}\n"
        + (f"{found}; it was not used.\n" if found else "")
        + _manual_hint(raw_dir, name, files, dataset)
    )


def fetch_verified(
    raw_dir: Path,
    files: Mapping[str, str],
    mirrors: Sequence[str],
    dataset: str,
    timeout_s: float = 30.0,
    progress: bool = True,
    content_md5: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Make sure every file of `files` ({name: md5}) is in raw_dir and verified; return {name: md5}.

    Files already present are verified and used without any network access; a present file
    with a wrong MD5 is moved to <name>.bad (<name>.bad.1, ... if that is taken) and is an error
    (never silently replaced). Missing files are downloaded from the mirrors in order (each file at
    `<mirror>/<name>`), each verified before it gets its final name. `content_md5` ({name: md5 of
    the decompressed content}, for gzip files) also accepts a file compressed again from the
    genuine content, and a genuine file that was gunzipped (`name` without .gz): it is gzipped
    again beside itself. `dataset` names the data in messages.
    """
    check_mirrors(mirrors, dataset)
    _check_files(files, dataset)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    # Check everything already present first, so a bad hand-placed file is reported
    # before spending time on downloads.
    content = dict(content_md5 or {})
    _quarantine_bad_files(raw_dir, files, dataset, content)
    for name in files:
        found = None if (raw_dir / name).is_file() else _gzip_genuine_plain_copy(raw_dir, name, content.get(name))
        if found:
            print(f"{found}: not used, so {name} is downloaded")
        if not (raw_dir / name).is_file():
            _fetch_one(raw_dir, name, files, mirrors, dataset, timeout_s, progress, content, found)
    return dict(files)
