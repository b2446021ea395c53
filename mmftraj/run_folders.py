"""Run folders that can never reach outside the runs directory, and that mmftraj deletes only
when its own marker file says it made them.

A run lives at `<runs-dir>/<task>/[<group>/]<name>/`. Names and groups are single path components
(letters, digits, `-`, `_`, `.`; not `.` or `..`), so no name can point at a user's folder.
The marker (`.mmftraj-run`, a small JSON) is written when mmftraj creates the folder; `--overwrite`
and the clean-up of a start that never trained touch only folders that carry it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError
from .io import atomic_write_text

MARKER = ".mmftraj-run"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
MAX_NAME = 200


def check_run_name(name: str, what: str = "--name") -> str:
    """`name` if it is one safe path component, else a UserError saying what is allowed."""
    if not isinstance(name, str) or not name:
        raise UserError(f"{what} is empty; give a name of letters, digits, '-', '_' or '.'")
    if name in (".", "..") or not _NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise UserError(f"{what} {name!r} is not a run name: use letters, digits, '-', '_' and '.' only "
                        f"(no '/', no '..', at most {MAX_NAME} characters); runs always live under the runs directory")
    return name


def run_folder(runs_dir: Path, task: str, name: str, group: str | None = None) -> Path:
    """The folder of run `name` (inside `group` when given), every component checked."""
    parts = [check_run_name(task, "task"), *([check_run_name(group, "group")] if group else []), check_run_name(name)]
    return Path(runs_dir).joinpath(*parts)


def is_ours(run_dir: Path) -> bool:
    """True when `run_dir` is a real folder (not a link) that mmftraj created, per its marker."""
    marker = run_dir / MARKER
    if run_dir.is_symlink() or not run_dir.is_dir() or marker.is_symlink() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("created_by") == "mmftraj"
    except (OSError, ValueError, AttributeError):
        return False


def claim(run_dir: Path, task: str) -> None:
    """Create `run_dir` (and its parents) and mark it as mmftraj's; an existing marked folder is kept."""
    if run_dir.is_symlink():
        raise UserError(f"run folder {run_dir} is a symbolic link; mmftraj only writes runs into folders it made")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / MARKER).exists():
        atomic_write_text(run_dir / MARKER, json.dumps({"created_by": "mmftraj", "task": task,
                                                        "created": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


# what mmftraj writes or rewrites in a run folder; none of them may be a symbolic link
WRITTEN = (MARKER, "config.yaml", "metrics.csv", "results.json", "checkpoints")


def refuse_links(run_dir: Path) -> None:
    """A UserError when any file or folder mmftraj writes in `run_dir` is a symbolic link: it never
    writes through one (a link's target may be anything of the user's)."""
    links = [name for name in WRITTEN if (run_dir / name).is_symlink()]
    if links:
        what = "is a symbolic link" if len(links) == 1 else "are symbolic links"
        raise UserError(f"run {run_dir}: {', '.join(links)} {what}"
                        "; mmftraj never writes through links, so it will not continue this run: replace "
                        f"{'it' if len(links) == 1 else 'them'} with the real file or folder")


def refuse_wrong_kinds(run_dir: Path) -> None:
    """A UserError when a file mmftraj rewrites in `run_dir` is a folder (or `checkpoints` a file):
    found before training, not when the first row or the results are written."""
    wrong = [f"{name} is {'a file' if name == 'checkpoints' else 'a folder'}" for name in WRITTEN
             if (run_dir / name).exists() and (run_dir / name).is_dir() != (name == "checkpoints")]
    if wrong:
        raise UserError(f"run {run_dir}: {'; '.join(wrong)}; mmftraj will not continue this run: move "
                        f"{'it' if len(wrong) == 1 else 'them'} away (or choose another --name)")


def missing_run(run_dir: Path, shown: int = 12) -> str:
    """The message for --resume of a run that does not exist: the runs there are, or to drop --resume."""
    parent = run_dir.parent
    folders = parent.iterdir() if parent.is_dir() else ()
    names = sorted(p.name for p in folders if p.is_dir() and not p.name.startswith("."))
    if not names:
        return f"--resume: there is no run {run_dir} (no runs under {parent} yet); drop --resume to start it"
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    return (f"--resume: there is no run {run_dir}; the runs under {parent} are {listed}: give one with --name, "
            "or drop --resume to start this one")


def remove(run_dir: Path, why: str) -> None:
    """Delete a run folder that mmftraj made; refuse (UserError) any other folder."""
    if not is_ours(run_dir):
        raise UserError(f"{run_dir} exists but mmftraj did not create it (no {MARKER} marker), so it will not "
                        f"{why} it; move it away yourself or choose another --name")
    shutil.rmtree(run_dir)


def never_trained(run_dir: Path) -> bool:
    """An mmftraj run folder holding only what is written before training starts."""
    return is_ours(run_dir) and {p.name for p in run_dir.iterdir()} <= {"config.yaml", MARKER}


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on run `run_dir` (a `.<name>.lock` file beside it) for the block.

    The kernel releases an flock when its process ends, however it ends, so a lock is never stale;
    the file keeps the holder's PID for the message a second process gets. A symbolic link there is
    refused (O_NOFOLLOW), never opened: the PID would overwrite its target. When the block leaves
    no run folder (a refused or cleaned-up start), the lock file is removed while still held; a
    process that opened it before then finds its lock on a file no longer at the path and retries."""
    path = run_dir.parent / f".{run_dir.name}.lock"
    fd = _lock(path, run_dir)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        if not (run_dir.exists() or run_dir.is_symlink()):
            with contextlib.suppress(OSError):
                path.unlink()
        os.close(fd)  # releases the lock


def _lock(path: Path, run_dir: Path) -> int:
    """An open descriptor of `path` holding its flock, the file still being the one at `path`."""
    while True:
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UserError(f"{path}, the lock file of run {run_dir}, is a symbolic link; mmftraj never writes "
                                "through links: remove the link (its target is left as it is)") from None
            raise UserError(f"cannot write runs under {run_dir.parent}: {exc.strerror or exc}; choose a writable "
                            "--runs-dir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            message = f"run {run_dir} is in use by process {holder}; wait for it or choose another --name"
            raise UserError(message) from None
        if _is_at(path, fd):
            return fd
        os.close(fd)  # its last holder removed it after we opened it: lock the file now there


def _is_at(path: Path, fd: int) -> bool:
    try:
        here, held = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)
