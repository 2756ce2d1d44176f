"""The one way the framework writes a file in a folder that someone else may have prepared.

An output folder can hold a planted ``config.yaml -> /home/you/.bashrc`` (a symbolic link) or a hard link to a file
elsewhere. Writing through either changes that other file. So:

- whole files are written to a fresh hidden sibling (created with ``O_EXCL | O_NOFOLLOW``) and renamed over the
  name (``write_file``, ``replaced_on_success`` for writers that take a path, such as ``torch.onnx.export``): the
  rename replaces a link itself, never what it points to;
- files written in place (an append-only log, a lock file) are opened with ``O_NOFOLLOW`` and must be a regular file
  with one link (``open_output``); anything else is ``PlantedOutput``, one line naming the path.
"""
from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO, Iterator

from data_pipelines.atomic_dir import staging_path


class PlantedOutput(OSError):
    """An output name is a symbolic link, a hard link to another file, or not a regular file: not written through."""

    def __str__(self) -> str:
        return str(self.args[0])


def _refuse(path: Path, what: str) -> PlantedOutput:
    return PlantedOutput(f"{path} {what}; refusing to write through it (remove it, or choose another folder)")


def _describe_link(path: Path) -> str:
    try:
        return f"is a symbolic link (to {os.readlink(path)})"
    except OSError:
        return "is a symbolic link"


def open_fd(path: str | Path, flags: int, mode: int = 0o644) -> int:
    """``os.open(path, flags | O_NOFOLLOW)``: PlantedOutput when ``path`` is a link, a hard-linked or special file."""
    path = Path(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as error:
        if os.path.islink(path):
            raise _refuse(path, _describe_link(path)) from None
        if error.errno == 6:  # ENXIO: a FIFO without reader
            raise _refuse(path, "is not a regular file") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        what = "is not a regular file" if not stat.S_ISREG(info.st_mode) else \
            f"is a hard link ({info.st_nlink} names share its content)"
        raise _refuse(path, what)
    os.set_blocking(fd, True)
    return fd


def open_output(path: str | Path, mode: str = "a", encoding: str | None = "utf-8") -> IO:
    """Open ``path`` for appending (``"a"``/``"ab"``) or truncating (``"w"``/``"wb"``) without following a link."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = open_fd(path, flags)
    return os.fdopen(fd, mode, encoding=None if "b" in mode else encoding)


def _fresh_temporary(path: Path) -> tuple[Path, int]:
    """A new hidden sibling of ``path`` and its open descriptor, created exclusively (a name planted there is removed
    first, never followed)."""
    temporary = staging_path(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    return temporary, open_fd(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL)


@contextlib.contextmanager
def _installed_on_success(path: Path, temporary: Path) -> Iterator[None]:
    try:
        yield
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@contextlib.contextmanager
def replaced_on_success(path: str | Path) -> Iterator[Path]:
    """``with replaced_on_success(out) as temporary:`` write ``temporary`` (any writer that takes a path); on success
    it is renamed over ``out`` (a link there is replaced, not followed); on error it goes and ``out`` stays."""
    path = Path(path)
    temporary, fd = _fresh_temporary(path)
    os.close(fd)
    with _installed_on_success(path, temporary):
        yield temporary


def write_file(path: str | Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``content`` to ``path`` atomically, never through a link planted at ``path``."""
    path = Path(path)
    temporary, fd = _fresh_temporary(path)
    with _installed_on_success(path, temporary), os.fdopen(fd, "wb") as handle:
        handle.write(content.encode(encoding) if isinstance(content, str) else content)
        handle.flush()
        os.fsync(handle.fileno())
    return path
