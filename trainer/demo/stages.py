"""How the demo runs its stages: each one a subprocess in the repository (its own interpreter, offline), announced by a
header line with the time since the demo started; a stage that fails ends the demo with its exit status."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from trainer.demo.arguments import REPO, DemoError

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}


class StageFailed(DemoError):
    def __init__(self, command: Sequence[str], returncode: int):
        status = 128 - returncode if returncode < 0 else returncode  # killed by signal N: 128 + N, as a shell says
        super().__init__(f"{' '.join(map(str, command[:4]))} ... ended with exit status {status}", status)


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
        return subprocess.run([self.python, *arguments], cwd=REPO, env=self.env).returncode == 0

    def run(self, *arguments: str, stdout=None) -> None:
        """``python ARGUMENTS``; its output goes to the demo's (or to the open file ``stdout``)."""
        sys.stdout.flush()
        self._check([self.python, *arguments], subprocess.run([self.python, *arguments], cwd=REPO, env=self.env,
                                                              stdout=stdout).returncode)

    def output(self, *arguments: str) -> str:
        """``python ARGUMENTS``' standard output (its errors still go to the demo's), trailing newlines cut."""
        command = [self.python, *arguments]
        completed = subprocess.run(command, cwd=REPO, env=self.env, stdout=subprocess.PIPE)
        self._check(command, completed.returncode)
        return completed.stdout.decode("utf-8", "replace").rstrip("\n")

    def run_logged(self, log: Path, *arguments: str) -> str:
        """``python ARGUMENTS``, its output both shown and written to ``log``; returns the output's last line."""
        command = [self.python, *arguments]
        sys.stdout.flush()
        with open(log, "wb") as copy, subprocess.Popen(command, cwd=REPO, env=self.env, stdout=subprocess.PIPE) as job:
            for line in job.stdout:
                copy.write(line)
                sys.stdout.write(line.decode("utf-8", "replace"))
                sys.stdout.flush()
        self._check(command, job.returncode)
        lines = log.read_bytes().decode("utf-8", "replace").splitlines()
        return lines[-1] if lines else ""

    @staticmethod
    def _check(command: Sequence[str], returncode: int) -> None:
        if returncode != 0:
            raise StageFailed(command, returncode)
