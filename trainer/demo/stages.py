"""How the demo runs its stages: each one a subprocess in the repository (its own interpreter, offline), announced by a
header line with the time since the demo started; a stage that fails ends the demo with its exit status."""
from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from trainer.demo.arguments import REPO, DemoError

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}


class StageFailed(DemoError):
    def __init__(self, command: Sequence[str], returncode: int):
        status = 128 - returncode if returncode < 0 else returncode  # killed by signal N: 128 + N, as a shell says
        super().__init__(f"{' '.join(map(str, command[:4]))} ... ended with exit status {status}", status)


@contextlib.contextmanager
def _waiting_through_ctrl_c() -> Iterator[None]:
    """Ctrl-C reaches the running stage too (one process group): the demo waits for it to stop in order (training saves
    a checkpoint) and then ends with its status, as a shell script would, instead of killing it. A handler, not
    SIG_IGN, so that the stage's own Ctrl-C handling (inherited dispositions) stays as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda number, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class StageRunner:
    """Runs commands as the demo's stages. ``python`` is the interpreter of every stage; ``environ`` their environment
    (with the Hugging Face libraries kept offline); ``clock`` gives seconds (time.monotonic)."""

    def __init__(self, python: str, environ: Mapping[str, str], clock: Callable[[], float] = time.monotonic):
        self.python = python
        self.env = {**environ, **OFFLINE}
        self._clock = clock
        self._started = clock()

    def elapsed_s(self) -> int:
        """Whole seconds since the demo started."""
        return int(self._clock() - self._started)

    def stage(self, title: str) -> None:
        elapsed = self.elapsed_s()
        print(f"\n== [{elapsed // 60}m{elapsed % 60}s] {title}", flush=True)

    def succeeds(self, *arguments: str) -> bool:
        """Whether ``python ARGUMENTS`` exits 0 (a question asked of the environment, not a stage)."""
        return self._run(arguments).returncode == 0

    def run(self, *arguments: str, stdout=None) -> None:
        """``python ARGUMENTS``; its output goes to the demo's (or to the open file ``stdout``)."""
        self._check(self._run(arguments, stdout))

    def output(self, *arguments: str) -> str:
        """``python ARGUMENTS``' standard output (its errors still go to the demo's), trailing newlines cut."""
        completed = self._check(self._run(arguments, subprocess.PIPE))
        return completed.stdout.decode("utf-8", "replace").rstrip("\n")

    def run_logged(self, log: Path, *arguments: str) -> str:
        """``python ARGUMENTS``, its output both shown and written to ``log``; returns the output's last line."""
        sys.stdout.flush()
        with _waiting_through_ctrl_c(), open(log, "wb") as copy, \
                subprocess.Popen([self.python, *arguments], cwd=REPO, env=self.env, stdout=subprocess.PIPE) as job:
            for line in job.stdout:
                copy.write(line)
                sys.stdout.write(line.decode("utf-8", "replace"))
                sys.stdout.flush()
        self._check(job)
        lines = log.read_bytes().decode("utf-8", "replace").splitlines()
        return lines[-1] if lines else ""

    def _run(self, arguments: Sequence[str], stdout=None) -> subprocess.CompletedProcess:
        sys.stdout.flush()  # the demo's own lines come before the stage's
        with _waiting_through_ctrl_c():
            return subprocess.run([self.python, *arguments], cwd=REPO, env=self.env, stdout=stdout)

    @staticmethod
    def _check(finished: subprocess.CompletedProcess | subprocess.Popen):
        if finished.returncode != 0:
            raise StageFailed(finished.args, finished.returncode)
        return finished
