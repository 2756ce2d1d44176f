"""Which run an ``output_dir`` holds, and what starting a run in it may do.

- No ``--resume``: the folder must hold no run (step checkpoints, ``best/``, ``train_log.jsonl``); ``--overwrite``
  moves an existing one aside to ``OUTPUT_DIR.replaced-TIMESTAMP`` (nothing is deleted).
- ``--resume latest``: the newest intact step checkpoint; an error when there is none or all are corrupt.
- ``--resume auto`` (for schedulers that relaunch the same command): like ``latest`` when a step checkpoint exists
  (still an error when all are corrupt), else a fresh start.
- ``--resume CKPT_DIR``: that checkpoint.
Every run has a ``run_id`` (kept across resumes); ``best/`` belongs to the run whose id it records.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from trainer.checkpoint import (STATE_FILE, CheckpointError, list_step_checkpoints, verify_checkpoint)
from trainer.run_log import LOG_FILE

RESUME_CHOICES = ("latest", "auto")
BEST_DIR = "best"


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def run_artefacts(output_dir: str | Path) -> list[Path]:
    """What a previous run left in ``output_dir``: step checkpoints, ``best/``, ``train_log.jsonl``."""
    output_dir = Path(output_dir)
    found = list_step_checkpoints(output_dir)[-1:]
    found += [path for path in (output_dir / BEST_DIR, output_dir / LOG_FILE) if path.exists()]
    return found


def move_aside(output_dir: str | Path) -> Path:
    """Rename ``output_dir`` to a sibling ``NAME.replaced-YYYYmmdd-HHMMSS`` and return the new path."""
    output_dir = Path(output_dir)
    target = output_dir.with_name(f"{output_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
    suffix = 1
    while target.exists():
        target, suffix = target.with_name(f"{target.name}-{suffix}"), suffix + 1
    os.replace(output_dir, target)
    return target


def check_fresh_start(output_dir: str | Path, overwrite: bool) -> Path | None:
    """Refuse to start a new run over an old one; with ``overwrite`` move the old one aside (returns where)."""
    artefacts = run_artefacts(output_dir)
    if not artefacts:
        return None
    if overwrite:
        return move_aside(output_dir)
    names = ", ".join(str(path) for path in artefacts)
    raise CheckpointError(f"output_dir {output_dir} already holds a run ({names}); continue it with --resume latest, "
                          f"or pass --overwrite to move it aside, or choose another output_dir")


def find_resume_checkpoint(spec: str, output_dir: str | Path) -> Path | None:
    """The checkpoint ``--resume SPEC`` continues from; None means a fresh start (``auto`` without checkpoints)."""
    if spec not in RESUME_CHOICES:
        verify_checkpoint(spec)
        return Path(spec)
    candidates = list_step_checkpoints(output_dir)
    problems = []
    for candidate in reversed(candidates):
        try:
            verify_checkpoint(candidate)
            return candidate
        except CheckpointError as error:
            problems.append(str(error))
    if candidates:
        raise CheckpointError(f"--resume {spec}: all {len(candidates)} checkpoint(s) under {output_dir} are corrupt or "
                              f"incomplete (newest: {problems[0]}); resume from a copy with --resume CKPT_DIR or "
                              f"start again with --overwrite")
    if spec == "auto":
        return None
    raise CheckpointError(f"--resume latest: no checkpoint under {Path(output_dir) / 'checkpoints'}; start without "
                          f"--resume (or use --resume auto, which starts fresh when there is nothing to resume)")


def best_of_run(output_dir: str | Path, run_id: str) -> dict | None:
    """``trainer_state.json`` of ``output_dir/best`` when it belongs to ``run_id`` and is intact, else None; a
    ``best/`` of another run is an error (it would be overwritten)."""
    best = Path(output_dir) / BEST_DIR
    if not (best / STATE_FILE).is_file():
        return None
    state = json.loads((best / STATE_FILE).read_text(encoding="utf-8"))
    if state.get("run_id", "") != run_id:  # "": written before runs had ids
        raise CheckpointError(f"{best} belongs to run {state.get('run_id')!r}, not to the resumed run {run_id!r}; "
                              f"move it away or choose another output_dir")
    try:
        return verify_checkpoint(best)
    except CheckpointError:
        return None


def truncate_log(output_dir: str | Path, step: int) -> int:
    """Drop ``train_log.jsonl`` lines after ``step`` (they are re-logged by the resumed run); returns how many."""
    path = Path(output_dir) / LOG_FILE
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if _logged_step(line) <= step]
    if len(kept) != len(lines):
        tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, path)
    return len(lines) - len(kept)


def _logged_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return float("inf")  # a torn last line from a killed process goes too
