"""Write a directory atomically: fill a hidden temporary sibling, then rename it over the target.

Used for prepared datasets, feature caches and checkpoints, so a reader finds each either complete or absent, and a
process killed mid-write leaves the previous version untouched (plus a ``.NAME.partial-PID`` folder to clean up).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator


def staging_dir(target: str | Path) -> Path:
    """A new, empty hidden sibling ``.NAME.partial-PID`` of ``target`` (its parent is created if needed)."""
    target = Path(target)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def remove_stale_staging(parent: str | Path) -> None:
    """Delete the staging and moved-aside folders that killed writers left in ``parent``."""
    for stale in [*Path(parent).glob(".*.partial-*"), *Path(parent).glob(".*.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)


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
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    _fsync_dir(target.parent)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old.exists():  # a file was in the way (replaced with --overwrite)
        old.unlink()
    return target


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """``with atomic_dir(out) as staging:`` write into ``staging``; on success it becomes ``out``, on error it goes."""
    staging = staging_dir(target)
    try:
        yield staging
        install_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
