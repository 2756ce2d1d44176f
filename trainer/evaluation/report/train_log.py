"""The run's ``train_log.jsonl`` (written by trainer/train.py): where it is and its records by step."""
from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

LOG_FILE = "train_log.jsonl"


def find_train_log(checkpoint: Path) -> Path | None:
    """``train_log.jsonl`` of the run a checkpoint belongs to: OUT/best, OUT/checkpoints/step_N, or OUT itself."""
    for folder in (checkpoint, checkpoint.parent, checkpoint.parent.parent):
        if (folder / LOG_FILE).is_file():
            return folder / LOG_FILE
    return None


def _records(path: Path) -> list[dict]:
    """The object of each non-blank line. A last line cut short (no newline, not JSON: the run was killed while
    writing it) is dropped with a WARNING; any other bad line is a ValueError naming the file and line."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines) and not text.endswith("\n"):
                logger.warning("%s: line %d is cut short (%s); read up to the line before", path, number, error.msg)
                break
            raise ValueError(f"{path}: line {number}, column {error.colno}: invalid JSON: {error.msg}") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            step = record.get("step") if isinstance(record, dict) else record
            raise ValueError(f"{path}: line {number}: expected an object with an integer 'step', got {step!r:.60}")
        records.append(record)
    return records


def read_train_log(path: Path) -> list[dict]:
    """One merged record per step, in step order; a resumed run's lines replace the earlier ones of the same step.
    ``wall_time`` (seconds since the epoch) is absent in logs written before it was recorded."""
    by_step: dict[int, dict] = {}
    for record in _records(path):
        by_step.setdefault(record["step"], {}).update(record)
    return [by_step[step] for step in sorted(by_step)]
