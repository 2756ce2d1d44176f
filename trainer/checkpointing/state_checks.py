"""Type and range checks of a checkpoint's ``trainer_state.json``, run before anything of it is used.

A checkpoint may come from elsewhere: every field the trainer reads is checked here, and a wrong one is a one-line
CheckpointError naming the file, the key, the value and what was expected (never a traceback, never a run that trains
from step -5)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from trainer.checkpointing.checkpoint import CheckpointError

FORMAT_VERSION = 2  # of trainer_state.json; 2: the data position is ``step_in_epoch``, in global batches

# key -> (kind, minimum, may be null, required)
FIELDS: dict[str, tuple[str, float | None, bool, bool]] = {
    "format_version": ("int", 1, False, True),
    "step": ("int", 0, False, True),
    "epoch": ("int", 0, False, True),
    "step_in_epoch": ("int", 0, False, False),
    "samples_seen": ("int", 0, False, False),
    "best_cider": ("number", 0, True, False),
    "best_step": ("int", 0, True, False),
    "best_seen_cider": ("number", 0, True, False),
    "validated_step": ("int", 0, True, False),
    "run_id": ("str", None, False, False),
    "stage_end": ("int", 0, True, False),
    "decay_end": ("int", 0, True, False),
    "evals_without_gain": ("int", 0, False, False),
    "stop_reason": ("str", None, False, False),
    "reference_cider": ("object", None, True, False),
    "streak_cider": ("object", None, True, False),
    "streak_length": ("int", 0, False, False),
    "world_size": ("int", 1, False, True),
    "rng": ("list", None, False, True),
    "scheduler": ("object", None, False, True),
    "grad_scaler": ("object", None, True, False),
    "config_hash": ("str", None, False, True),
    "train_config": ("object", None, False, True),
    "data_order": ("object", None, True, False),
    "dataset_fingerprint": ("str", None, False, False),
}
STOP_DECISIONS = ("", "plateau", "budget")  # the values of ``stop_reason`` (trainer.training.stage_end)
_KINDS = {"int": "an int", "number": "a finite number", "str": "a string", "list": "a list", "object": "an object"}


def _matches(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, {"str": str, "list": list, "object": dict}[kind])


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def state_error(path: Path, key: str, value: Any, expected: str) -> CheckpointError:
    return CheckpointError(f"{path}: key '{key}' = {_shown(value)}, expected {expected}")


def check_field(path: Path, key: str, value: Any, kind: str, minimum: float | None = None,
                nullable: bool = False) -> None:
    if value is None and nullable:
        return
    expected = _KINDS[kind] + ("" if minimum is None else f" >= {minimum:g}") + (" or null" if nullable else "")
    if not _matches(value, kind) or (minimum is not None and value < minimum):
        raise state_error(path, key, value, expected)


def check_trainer_state(state: dict, path: str | Path) -> dict:
    """``state`` (the parsed ``path``) when every field the trainer reads has its type and range; else
    CheckpointError naming the first wrong one."""
    path = Path(path)
    for key, (kind, minimum, nullable, required) in FIELDS.items():
        if key not in state:
            if required:
                raise CheckpointError(f"{path}: key '{key}' is missing ({_KINDS[kind]} expected)")
            continue
        check_field(path, key, state[key], kind, minimum, nullable)
    if state["format_version"] != FORMAT_VERSION:
        raise state_error(path, "format_version", state["format_version"], str(FORMAT_VERSION))
    if not state["rng"] or not all(isinstance(entry, dict) for entry in state["rng"]):
        raise state_error(path, "rng", state["rng"], "a non-empty list of per-process RNG states (objects)")
    for later in ("step_in_epoch", "best_step", "validated_step"):
        if (state.get(later) or 0) > state["step"]:
            raise state_error(path, later, state[later], f"at most step = {state['step']}")
    if state.get("stop_reason", "") not in STOP_DECISIONS:
        expected = "one of " + ", ".join(map(json.dumps, STOP_DECISIONS))
        raise state_error(path, "stop_reason", state["stop_reason"], expected)
    for per_image in ("reference_cider", "streak_cider"):
        for image_id, score in (state.get(per_image) or {}).items():
            check_field(path, f"{per_image}.{image_id}", score, "number", 0)
    last_epoch = state["scheduler"].get("last_epoch")
    check_field(path, "scheduler.last_epoch", last_epoch, "int", 0)
    return state


def check_best_state(state: dict, path: str | Path) -> dict:
    """The fields a resume reads from ``best/trainer_state.json``: ``best_cider`` and ``best_step``."""
    path = Path(path)
    check_field(path, "best_cider", state.get("best_cider"), "number", 0, nullable=True)
    check_field(path, "best_step", state.get("best_step"), "int", 0, nullable=True)
    return state
