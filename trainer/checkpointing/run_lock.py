"""One run per ``output_dir``: an exclusive POSIX record lock (``fcntl.lockf``) on ``output_dir/.lock``, held by the
main process for the run's life.

The file records the holder (pid, host, start time, run id) so a refused run names it. A record lock belongs to the
process, not to the open file: the kernel drops it when the holder exits (SIGKILL included), and a child never has it,
whether forked (data loader workers) or spawned with a copy of the descriptor. So a killed run never leaves the lock
held, with no at-fork handler and no window right after a fork. The caveat of record locks: closing *any* descriptor
of the file in the holding process drops its lock, so nothing in this process opens ``.lock`` while it is held (a
second ``acquire`` here is refused from memory). The name is opened without following a link
(``data_pipelines.safe_write``). Record locks work across hosts on NFS (lockd / NFSv4) and on Lustre with ``flock`` or
``localflock``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from data_pipelines.safe_write import open_fd

LOCK_FILE = ".lock"
_HELD: dict[tuple[int, int], "RunLock"] = {}  # (device, inode) of each lock file this process holds


def _file_key(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


class RunDirInUse(RuntimeError):
    """Another live process holds the ``output_dir``."""


class RunLock:
    """``RunLock.acquire(output_dir)``; ``record(run_id=...)`` adds to what the lock file says; ``release()``."""

    def __init__(self, path: Path, fd: int, holder: dict):
        self.path, self.fd, self.holder = path, fd, holder

    @classmethod
    def acquire(cls, output_dir: str | Path) -> "RunLock":
        """Lock ``output_dir`` (which must exist); RunDirInUse naming the holder when another run has it."""
        path = Path(output_dir) / LOCK_FILE
        with contextlib.suppress(FileNotFoundError):
            held = _HELD.get(_file_key(os.stat(path, follow_symlinks=False)))
            if held is not None:  # opening the file again here would drop our own lock when closed
                raise _in_use(output_dir, path, describe(held.holder))
        fd = open_fd(path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # EAGAIN / EACCES: another process holds it
            os.close(fd)
            raise _in_use(output_dir, path, describe_holder(path)) from None
        lock = cls(path, fd, {"pid": os.getpid(), "host": socket.gethostname(),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        _HELD[_file_key(os.fstat(fd))] = lock
        lock._write()
        return lock

    def record(self, **fields) -> None:
        self.holder.update(fields)
        self._write()

    def _write(self) -> None:
        payload = (json.dumps(self.holder) + "\n").encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, payload, 0)

    def release(self) -> None:
        key = _file_key(os.fstat(self.fd)) if self.fd >= 0 else None
        if key is not None and _HELD.get(key) is self:
            del _HELD[key]
            os.close(self.fd)  # the file stays: deleting it would let two runs lock two different files
            self.fd = -1


def _in_use(output_dir, path: Path, holder: str) -> RunDirInUse:
    return RunDirInUse(f"output_dir {output_dir} is in use by another run ({holder}; lock {path}); wait for it to "
                       f"end or choose another output_dir")


def describe(holder: object) -> str:
    """``pid P on host H, started T, run R`` from a lock record."""
    if not isinstance(holder, dict):
        return "holder not recorded"
    parts = [f"pid {holder.get('pid')} on host {holder.get('host')}", f"started {holder.get('started')}"]
    if holder.get("run_id"):
        parts.append(f"run {holder['run_id']}")
    return ", ".join(parts)


def describe_holder(path: Path) -> str:
    """What the lock file at ``path`` (held by another process) says about its holder."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "holder not yet recorded"
    return describe(holder)
