"""Name the rank that was lost: every process beats a counter in the process group's key-value store from a thread.

A crashed peer makes gloo fail within seconds (closed socket) with an error that names an address, not a rank; a hung
or unreachable peer makes NCCL wait for the process-group timeout. In both cases the survivor should say which rank
is gone and exit, so the job ends and ``--resume latest`` can continue from the last checkpoint. The heartbeat thread
keeps beating while the main thread computes or waits (torch releases the GIL), so a silent counter means a dead,
stopped or disconnected process.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Callable

logger = logging.getLogger(__name__)
EXIT_LOST_RANK = 3


def lost_rank_message(ranks: list[int], silent_s: float, timeout_s: float) -> str:
    names = ", ".join(str(rank) for rank in ranks)
    return (f"error: lost rank {names}: no heartbeat for {silent_s:.0f} s (distributed.timeout_s={timeout_s:g}); "
            f"the last complete checkpoint is intact: restart with --resume latest")


def _exit_lost(message: str) -> None:
    """Default action of the heartbeat thread: the main thread may be stuck inside a collective, so exit hard."""
    print(message, file=sys.stderr, flush=True)
    logging.shutdown()
    os._exit(EXIT_LOST_RANK)


class RankWatchdog:
    """Beats ``beat/{rank}`` in ``store`` every ``interval_s`` and watches the other ranks' counters."""

    def __init__(self, store, rank: int, world_size: int, timeout_s: float, interval_s: float | None = None,
                 on_lost: Callable[[str], None] = _exit_lost):
        self.store, self.rank, self.world_size, self.timeout_s = store, rank, world_size, timeout_s
        self.interval_s = interval_s if interval_s is not None else max(0.5, min(10.0, timeout_s / 20))
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_seen: dict[int, tuple[int, float]] = {}  # rank -> (counter, monotonic time it last changed)
        self._thread = threading.Thread(target=self._run, name="rank-watchdog", daemon=True)

    def start(self) -> "RankWatchdog":
        self._observe()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Mark this rank finished (others stop watching it) and end the thread."""
        self._stop.set()
        try:
            self.store.add(f"done/{self.rank}", 1)
        except Exception:  # noqa: BLE001 - the store may already be gone at shutdown
            pass

    def _observe(self) -> None:
        now = time.monotonic()
        with self._lock:
            for rank in range(self.world_size):
                if rank == self.rank:
                    continue
                counter = self.store.add(f"beat/{rank}", 0)
                if self.store.add(f"done/{rank}", 0):
                    counter = -1  # finished cleanly: never stale
                previous = self._last_seen.get(rank)
                if previous is None or previous[0] != counter or counter == -1:
                    self._last_seen[rank] = (counter, now)

    def silent_ranks(self, silent_for_s: float) -> list[int]:
        """Ranks whose counter has not moved for ``silent_for_s`` seconds."""
        now = time.monotonic()
        with self._lock:
            return sorted(rank for rank, (counter, changed) in self._last_seen.items()
                          if counter != -1 and now - changed >= silent_for_s)

    def diagnose(self, wait_s: float | None = None) -> str | None:
        """After a collective failed: the lost-rank message once some rank is silent for 3 beats (waiting at most
        ``wait_s``, default the timeout), or None if every rank keeps beating (the failure was something else)."""
        silent_for = 3 * self.interval_s
        deadline = time.monotonic() + (self.timeout_s if wait_s is None else wait_s)
        while True:
            try:
                self._observe()
            except Exception:  # noqa: BLE001 - the store itself is gone: its host (machine 0) was lost
                return (f"error: lost the rendezvous store at {os.environ.get('MASTER_ADDR')}:"
                        f"{os.environ.get('MASTER_PORT')} (machine 0); restart with --resume latest")
            silent = self.silent_ranks(silent_for)
            if silent:
                return lost_rank_message(silent, silent_for, self.timeout_s)
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.interval_s / 2)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.store.add(f"beat/{self.rank}", 1)
                self._observe()
            except Exception as error:  # noqa: BLE001
                if self._stop.is_set():
                    return
                self.on_lost(f"error: lost the rendezvous store at {os.environ.get('MASTER_ADDR')}:"
                             f"{os.environ.get('MASTER_PORT')} ({error}); restart with --resume latest")
                return
            silent = self.silent_ranks(self.timeout_s)
            if silent and not self._stop.is_set():
                self.on_lost(lost_rank_message(silent, self.timeout_s, self.timeout_s))
                return
