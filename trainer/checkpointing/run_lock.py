"""One run per ``output_dir``: an exclusive ``flock`` on ``output_dir/.lock``, held by the main process for the run's life.

The file records the holder (pid, host, start time, run id) so a refused run names it. The kernel drops the lock when
the holder exits, SIGKILL included, so a killed run never leaves it held; children forked later (data loader workers)
close their inherited copy, so they cannot keep it alive either. ``flock`` on network file systems depends on the
mount (NFSv4 and Lustre with ``flock`` honour it across hosts; some mounts only lock per host).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

LOCK_FILE = ".lock"
_HELD_FDS: set[int] = set()


def _close_inherited() -> None:
    for fd in _HELD_FDS:
        os.close(fd)  # the parent's lock stays: it is the open file description, which the parent still references
    _HELD_FDS.clear()


os.register_at_fork(after_in_child=_close_inherited)


class RunDirInUse(RuntimeError):
    """Another live process holds the ``output_dir``."""


class RunLock:
    """``RunLock.acquire(output_dir)``; ``record(run_id=...)`` adds to what the lock file says; ``release()``."""

    def __init__(self, path: Path, fd: int, holder: dict):
        self.path, self.fd, self.holder = path, fd, holder

    @classmethod
    def acquire(cls, output_dir: str | Path) -> "RunLock":
        """Lock ``output_dir`` (which must exist); RunDirInUse naming the holder when another process has it."""
        path = Path(output_dir) / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirInUse(f"output_dir {output_dir} is in use by another run ({describe_holder(path)}; lock "
                              f"{path}); wait for it to end or choose another output_dir") from None
        lock = cls(path, fd, {"pid": os.getpid(), "host": socket.gethostname(),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        _HELD_FDS.add(fd)
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
        if self.fd in _HELD_FDS:
            _HELD_FDS.discard(self.fd)
            os.close(self.fd)  # the file stays: deleting it would let two runs lock two different files


def describe_holder(path: Path) -> str:
    """``pid P on host H, started T, run R`` from a lock file (what could be read of it)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "holder not yet recorded"
    if not isinstance(holder, dict):
        return "holder not recorded"
    parts = [f"pid {holder.get('pid')} on host {holder.get('host')}", f"started {holder.get('started')}"]
    if holder.get("run_id"):
        parts.append(f"run {holder['run_id']}")
    return ", ".join(parts)
