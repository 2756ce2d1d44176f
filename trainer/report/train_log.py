"""The run's ``train_log.jsonl`` (written by trainer/train.py): where it is and its records by step."""
from __future__ import annotations

from pathlib import Path

from data_pipelines.sources.common import jsonl_objects

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
    for number, record in jsonl_objects(path):
        if not isinstance(record.get("step"), int):
            raise ValueError(f"{path}: line {number}: expected an integer 'step', got {record.get('step')!r}")
        by_step.setdefault(record["step"], {}).update(record)
    return [by_step[step] for step in sorted(by_step)]
