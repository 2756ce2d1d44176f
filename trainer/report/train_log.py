"""The run's ``train_log.jsonl`` (written by trainer/train.py): where it is and its records by step."""
from __future__ import annotations

import json
from pathlib import Path

LOG_FILE = "train_log.jsonl"


def find_train_log(checkpoint: Path) -> Path | None:
    """``train_log.jsonl`` of the run a checkpoint belongs to: OUT/best, OUT/checkpoints/step_N, or OUT itself."""
    for folder in (checkpoint, checkpoint.parent, checkpoint.parent.parent):
        if (folder / LOG_FILE).is_file():
            return folder / LOG_FILE
    return None


def read_train_log(path: Path) -> list[dict]:
    """One merged record per step, in step order; a resumed run's lines replace the earlier ones of the same step.
    ``wall_time`` (seconds since the epoch) is absent in logs written before it was recorded."""
    by_step: dict[int, dict] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise ValueError(f"{path}:{number}: expected an object with an integer 'step', got {line[:80]!r}")
        by_step.setdefault(record["step"], {}).update(record)
    return [by_step[step] for step in sorted(by_step)]
