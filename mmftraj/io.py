"""Atomic file writes (a file appears complete or not at all: temp file + rename), appends that never
follow a symbolic link, and the cache folder."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from .errors import UserError


def cache_dir() -> Path:
    """Where derived artefacts live (classifiers, reference statistics, image caches):
    ~/.cache/mmftraj, or MMFTRAJ_CACHE."""
    return Path(os.environ.get("MMFTRAJ_CACHE", Path.home() / ".cache" / "mmftraj"))


# errors of the place written to (permissions, a read-only mount, a full disk), not of mmftraj
WRITE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


def write_error(exc: OSError, path: str | Path, what: str = "folder") -> UserError:
    """One line for an OSError met writing under `path`, naming the remedy (`what` to choose)."""
    why = (exc.strerror or str(exc)).lower()
    remedy = "free some space or choose another" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "choose a writable"
    return UserError(f"cannot write to {path}: {why}; {remedy} {what}")


def check_writable(folder: str | Path, what: str = "folder") -> Path:
    """`folder`, after writing and removing a probe file in it (or, while it does not exist yet, in
    the nearest folder above it), so an unwritable output fails with one line before any work
    rather than with a traceback after it. Creates nothing."""
    folder = Path(folder)
    there = folder
    while not there.exists() and there != there.parent:
        there = there.parent
    if not there.is_dir():
        raise UserError(f"{there} is a file; give a folder as the {what}" if there == folder else
                        f"{folder} would be under the file {there}; choose another {what}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=there)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS:
            raise write_error(exc, there, what) from None
        raise
    return folder


def umask_mode(directory: bool = False) -> int:
    """The mode a plain open()/mkdir() would give under the current umask. Temp files and folders
    are created owner-only; results renamed from them should be readable like any other file."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, umask_mode())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def open_no_follow(path: str | Path, mode: str = "a") -> TextIO:
    """Open `path` as text for appending ("a") or writing ("w"), refusing (UserError) a symbolic
    link there: the kernel checks it (O_NOFOLLOW), so no link planted in between is written through."""
    flags = os.O_WRONLY | os.O_CREAT | {"a": os.O_APPEND, "w": os.O_TRUNC}[mode]
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link; mmftraj never writes through links: replace it with "
                            "the file itself") from None
        raise
    return os.fdopen(fd, mode, newline="")
