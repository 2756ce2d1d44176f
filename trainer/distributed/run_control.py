"""Orderly stops on Ctrl-C / SIGTERM, and loader iteration that neither perturbs the RNG nor dies on Ctrl-C."""
from __future__ import annotations

import contextlib
import signal
from typing import Iterable, Iterator

import torch

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks at optimizer-step boundaries (a second signal aborts)."""

    def __init__(self):
        self.signal_name: str | None = None
        self.signal_number: int = signal.SIGTERM  # of the stop request; another rank's counts as SIGTERM
        for number in STOP_SIGNALS:
            signal.signal(number, self._handle)

    def _handle(self, number: int, frame) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(number).name}: aborting without a checkpoint")
        self.signal_name, self.signal_number = signal.Signals(number).name, number

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    @property
    def exit_code(self) -> int:
        """0 when no stop was requested, else the shell's 128 + signal (143 for SIGTERM, 130 for Ctrl-C), so
        ``train && evaluate`` chains and schedulers see that the run did not finish."""
        return 128 + int(self.signal_number) if self.requested else 0

    def poll(self, accelerator) -> bool:
        """True on every rank as soon as any rank received a stop signal (one tiny all-reduce per step)."""
        if accelerator.num_processes > 1:
            flag = torch.tensor([1.0 if self.requested else 0.0], device=accelerator.device)
            if accelerator.reduce(flag, reduction="sum").item() > 0 and self.signal_name is None:
                self.signal_name = "SIGTERM (on another rank)"
        return self.requested


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold Ctrl-C / SIGTERM back while DataLoader workers (and pin-memory threads) start. They inherit the blocked
    signals, so a terminal's Ctrl-C or a job-wide SIGTERM leaves them serving batches until the main process has
    finished its step and shuts them down; the main process gets any signal that arrived meanwhile as soon as they
    are up (ignoring the signals here instead would drop a scheduler's SIGTERM that lands in this window)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def iterate_isolated(loader: Iterable) -> Iterator:
    """Iterate ``loader``: starting its workers consumes no global RNG, they survive a terminal Ctrl-C, and a stop
    signal that arrives while they start is not lost."""
    with torch.random.fork_rng(devices=[]), _stop_signals_held():
        iterator = iter(loader)
    yield from iterator
