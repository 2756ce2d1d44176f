"""Write a directory atomically: fill a hidden temporary sibling, then rename it over the target.

Used for prepared datasets, feature caches and checkpoints, so a reader finds each either complete or absent, and a
process killed mid-write leaves the previous version untouched (plus a ``.NAME.partial-PID-HOST`` folder to clean up).
Staging names carry their writer's pid and host, so a cleanup removes only what a dead writer left: on this host, when
that pid no longer runs; from another host (a shared file system), when untouched for ``FOREIGN_STALE_AFTER_S``.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Iterator

# A staging folder of another host is someone's live work unless nothing in it changed for this long.
FOREIGN_STALE_AFTER_S = 24 * 3600
_WRITER = re.compile(r"\.(?:partial|old)-(\d+)(?:-([A-Za-z0-9_.-]+))?$")


def this_host() -> str:
    """The host name as it appears in staging names (characters outside ``[A-Za-z0-9_.-]`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64] or "unknown"


def writer_tag() -> str:
    """``PID-HOST`` of this process, the suffix of its staging names."""
    return f"{os.getpid()}-{this_host()}"


def staging_path(target: str | Path, kind: str = "partial") -> Path:
    """The hidden sibling ``.NAME.KIND-PID-HOST`` of ``target`` this process writes through (nothing is created)."""
    target = Path(target)
    return target.parent / f".{target.name}.{kind}-{writer_tag()}"


def staging_dir(target: str | Path) -> Path:
    """A new, empty hidden sibling ``.NAME.partial-PID-HOST`` of ``target`` (its parent is created if needed)."""
    staging = staging_path(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def writer_gone(path: str | Path, now: float | None = None) -> bool:
    """Whether the process that named the staging ``path`` is gone (names without a host: this host's, older code)."""
    match = _WRITER.search(Path(path).name)
    if match is None:
        return False
    pid, host = int(match.group(1)), match.group(2)
    if host is None or host == this_host():
        return pid != os.getpid() and not _pid_running(pid)
    try:
        age = (time.time() if now is None else now) - Path(path).lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > FOREIGN_STALE_AFTER_S


def remove_stale_staging(parent: str | Path) -> None:
    """Clean up after writers killed in ``parent``: delete their staging folders/files; a moved-aside old version
    whose target is missing (killed between the two renames of ``install_dir``) is put back, others are deleted.
    Live writers' folders are left alone."""
    for stale in Path(parent).glob(".*.partial-*"):
        if writer_gone(stale):
            _remove(stale)
    for old in Path(parent).glob(".*.old-*"):
        if writer_gone(old):
            target = old.parent / old.name[1:old.name.rindex(".old-")]
            if target.exists():
                _remove(old)
            else:
                os.replace(old, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def install_dir(staging: str | Path, target: str | Path) -> Path:
    """Rename the finished ``staging`` folder to ``target``, replacing an existing one (moved aside, then deleted)."""
    staging, target = Path(staging), Path(target)
    _fsync_dir(staging)
    old = staging_path(target, "old")
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    _fsync_dir(target.parent)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old.exists():  # a file was in the way
        old.unlink()
    return target


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """``with atomic_dir(out) as staging:`` write into ``staging``; on success it becomes ``out``, on error it goes.
    What killed writers left beside ``out`` is cleaned up first (``remove_stale_staging``)."""
    remove_stale_staging(Path(target).parent)
    staging = staging_dir(target)
    try:
        yield staging
        install_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
