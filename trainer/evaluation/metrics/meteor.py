"""METEOR 1.5 through Java, as coco-caption scores it (pycocoevalcap 1.2 ships ``meteor-1.5.jar``).

The jar runs in ``-stdio`` mode: one ``SCORE ||| ref 1 ||| .. ||| ref n ||| hypothesis`` line per image answers with
that image's statistics; one ``EVAL ||| stats 1 ||| .. ||| stats N`` line answers with N per-image scores, then the
corpus score (computed from the pooled statistics, not the mean of the per-image scores). Loading the paraphrase
table costs seconds, so one process per Python process is started on first use and reused (training validates often).
Without ``java`` on PATH or without the jar, METEOR is absent: one logged line, never an error.

    pip install -e '.[meteor]'   # pycocoevalcap, for the jar; any Java >= 8 on PATH
"""
from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np

from trainer.evaluation.metrics.metric import CaptionMetric, MetricValues, Score

logger = logging.getLogger(__name__)

METEOR_NAME = "METEOR"
JAR_ENV = "SHOWATTEND_METEOR_JAR"  # a meteor-1.5.jar elsewhere (its data/ folder beside it)
JAR_NAME = "meteor-1.5.jar"
JAVA_OPTIONS = ("-Xmx2G",)  # coco-caption's heap size: the paraphrase table needs it
METEOR_OPTIONS = ("-", "-", "-stdio", "-l", "en", "-norm")  # coco-caption's: stdin/stdout, English, normalised


def find_meteor_jar(jar: str | Path | None = None) -> Path | None:
    """``jar`` if given, else ``$SHOWATTEND_METEOR_JAR``, else the jar inside the installed pycocoevalcap."""
    explicit = jar or os.environ.get(JAR_ENV)
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    spec = importlib.util.find_spec("pycocoevalcap")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "meteor" / JAR_NAME
        if candidate.is_file():
            return candidate
    return None


def unavailable_reason(jar: str | Path | None = None) -> str | None:
    """Why METEOR cannot run here (no java, no jar), or None when it can."""
    if shutil.which("java") is None:
        return "no `java` on PATH (install a Java runtime to get METEOR)"
    if find_meteor_jar(jar) is None:
        where = jar or os.environ.get(JAR_ENV)
        return (f"{where} is not a file" if where else
                f"{JAR_NAME} not found: pip install -e '.[meteor]' (pycocoevalcap ships it) or set {JAR_ENV}")
    return None


def _clean(text: str) -> str:
    """One protocol field: no field separator, no line break."""
    return " ".join(text.replace("|||", "").split())


class MeteorProcess:
    """One running METEOR jar; ``score`` may be called many times. Thread-safe; ``close`` ends the JVM."""

    def __init__(self, jar: Path):
        self.jar = Path(jar)
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            ["java", "-jar", *JAVA_OPTIONS, str(self.jar.resolve()), *METEOR_OPTIONS], cwd=self.jar.parent,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def _ask(self, line: str, answers: int) -> list[str]:
        self._process.stdin.write((line + "\n").encode())
        self._process.stdin.flush()
        replies = [self._process.stdout.readline().decode().strip() for _ in range(answers)]
        if any(not reply for reply in replies):
            raise RuntimeError(f"METEOR ({self.jar}) stopped answering (exit code {self._process.poll()})")
        return replies

    def score(self, candidates: list[str], references: list[list[str]]) -> tuple[float, np.ndarray]:
        """Corpus and per-image METEOR of tokenized captions (``references[i]``: image i's references)."""
        if not candidates or len(candidates) != len(references):
            raise ValueError(f"METEOR needs one reference list per candidate, got {len(candidates)} candidates and "
                             f"{len(references)} reference lists")
        with self._lock:
            stats = [self._ask(" ||| ".join(["SCORE", *map(_clean, refs), _clean(candidate)]), 1)[0]
                     for candidate, refs in zip(candidates, references)]
            replies = self._ask(" ||| ".join(["EVAL", *stats]), len(stats) + 1)
        return float(replies[-1]), np.array([float(reply) for reply in replies[:-1]])

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.kill()
            self._process.wait()


_shared: dict[Path, MeteorProcess] = {}
_logged_reasons: set[str] = set()


def _shared_process(jar: Path) -> MeteorProcess:
    if jar not in _shared:
        _shared[jar] = MeteorProcess(jar)
        atexit.register(_shared[jar].close)
    return _shared[jar]


def meteor_scores(candidates: list[str], references: list[list[str]],
                  jar: str | Path | None = None) -> tuple[float, np.ndarray] | None:
    """(corpus, per-image) METEOR of tokenized captions, or None (logged once per reason) when it cannot run."""
    reason = unavailable_reason(jar)
    if reason is None:
        path = find_meteor_jar(jar)
        try:
            return _shared_process(path).score(candidates, references)
        except (OSError, RuntimeError) as error:
            if (failed := _shared.pop(path, None)) is not None:
                failed.close()
            reason = f"the METEOR process failed: {error}"
    if reason not in _logged_reasons:
        _logged_reasons.add(reason)
        logger.warning("METEOR skipped: %s", reason)
    return None


def meteor_metric_scores(candidates: list[str], references: list[list[str]], per_image: bool) -> MetricValues | None:
    """Corpus and per-image METEOR, or None (logged) without Java or the jar."""
    scores = meteor_scores(candidates, references)
    return None if scores is None else {METEOR_NAME: scores}


METEOR = CaptionMetric("meteor", (Score(METEOR_NAME, "METEOR"),), meteor_metric_scores, report_column=20,
                       optional=True, missing_note="METEOR needs a <code>java</code> on PATH and pycocoevalcap's jar "
                                                   "(<code>pip install -e '.[meteor]'</code>)")
