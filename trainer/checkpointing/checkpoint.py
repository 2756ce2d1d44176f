"""Pickle-free training checkpoints: write atomically, verify, find the newest intact one, load, prune.

A checkpoint is ``output_dir/checkpoints/step_NNNNNNNN/`` (or ``output_dir/best/``) holding ``model.safetensors`` +
``config.json`` (``Captioner.save_pretrained``), ``optimizer.safetensors`` (state tensors as ``state.{param}.{name}``;
``param_groups`` and non-tensor state as JSON under the metadata key ``optimizer``), ``vocab.json`` and
``trainer_state.json`` (written last; records the byte size and sha256 of every other file, so truncation or corruption
is detected). Everything is written into a hidden temporary sibling directory that is then renamed into place, so a
process killed mid-write leaves the previous checkpoints untouched.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from data_pipelines.atomic_dir import install_dir, remove_stale_staging, staging_dir
from data_pipelines.safe_write import write_file
from modeling.config import CaptionerConfig, read_json_object
from trainer.checkpointing.folder_links import link_leading_out

logger = logging.getLogger(__name__)

MODEL_FILES = ("model.safetensors", "config.json", "optimizer.safetensors", "vocab.json")
STATE_FILE = "trainer_state.json"
STEP_DIR = re.compile(r"^step_(\d{8})$")
# Model fields that may change between runs: not weight shapes (the backbone's weights come from the checkpoint).
NON_SHAPE_MODEL_FIELDS = ("encoder_weights", "dropout", "scheduled_sampling", "finetune_from")
# Optimizer param-group entries that choose kernels, not the update: a resumed run keeps its own.
KERNEL_OPTIONS = ("foreach", "fused", "capturable", "differentiable")


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete, corrupt or incompatible with this run."""


def checkpoints_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def step_checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return checkpoints_dir(output_dir) / f"step_{step:08d}"


def optimizer_to_safetensors(optimizer: torch.optim.Optimizer, path: Path) -> None:
    """``state.{param}.{name}`` tensors; param_groups and non-tensor state as JSON metadata."""
    state_dict = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param), {})[name] = value
    # One metadata entry: safetensors writes several in a random order, and checkpoints should be byte-reproducible.
    metadata = {"optimizer": json.dumps({"param_groups": state_dict["param_groups"], "scalar_state": scalars})}
    save_file(tensors, str(path), metadata=metadata)


def load_optimizer_safetensors(optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Inverse of ``optimizer_to_safetensors`` (JSON lists turned back into tuples where the optimizer uses tuples)."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = json.loads(handle.metadata()["optimizer"])
    tensors = load_file(str(path))
    state: dict[int, dict] = {}
    for key, tensor in tensors.items():
        _, param, name = key.split(".", 2)
        state.setdefault(int(param), {})[name] = tensor
    for param, values in metadata["scalar_state"].items():
        state.setdefault(int(param), {}).update(values)
    groups = metadata["param_groups"]
    live_groups = optimizer.state_dict()["param_groups"]
    if len(groups) != len(live_groups):
        raise CheckpointError(f"{path}: {len(groups)} parameter group(s) saved, the optimizer has {len(live_groups)}")
    for group, live in zip(groups, live_groups):
        for key, value in group.items():
            if isinstance(live.get(key), tuple) and isinstance(value, list):
                group[key] = tuple(value)
        for key in KERNEL_OPTIONS:  # the kernel is this run's choice (optim.implementation), not the saved run's
            if key in live:
                group[key] = live[key]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _file_digest(path: Path, sync: bool = False) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
        if sync:
            os.fsync(handle.fileno())
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def write_checkpoint(target: str | Path, model, optimizer: torch.optim.Optimizer, vocab, state: dict) -> Path:
    """Write a checkpoint of the unwrapped ``model`` to ``target`` atomically (call on the main process only)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target.parent)  # left by a process killed mid-write
    tmp = staging_dir(target)
    try:
        model.save_pretrained(tmp)
        optimizer_to_safetensors(optimizer, tmp / "optimizer.safetensors")
        vocab.save(tmp / "vocab.json")
        files = {name: _file_digest(tmp / name, sync=True) for name in MODEL_FILES}
        (tmp / STATE_FILE).write_text(json.dumps({**state, "files": files}, indent=1) + "\n", encoding="utf-8")
        _file_digest(tmp / STATE_FILE, sync=True)
        return install_dir(tmp, target)
    except (OSError, SafetensorError) as error:  # e.g. ENOSPC: the partial copy goes, the older checkpoints stay
        shutil.rmtree(tmp, ignore_errors=True)
        reason = getattr(error, "strerror", None) or error
        raise CheckpointError(f"writing checkpoint {target} failed: {reason}; the previous checkpoints are "
                              f"intact") from error


def update_checkpoint_state(directory: str | Path, **fields) -> None:
    """Rewrite ``trainer_state.json`` of an intact checkpoint with ``fields`` changed (atomically; the weights and
    their recorded digests are untouched). Used to record a validation that finished after the checkpoint."""
    path = Path(directory) / STATE_FILE
    state = {**verify_checkpoint(directory), **fields}
    write_file(path, json.dumps(state, indent=1) + "\n")


def verify_checkpoint(directory: str | Path) -> dict:
    """``trainer_state.json`` of an intact checkpoint; CheckpointError saying what is missing or corrupt otherwise."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint directory does not exist")
    if problem := link_leading_out(directory):
        raise CheckpointError(problem)
    state_path = directory / STATE_FILE
    if not state_path.is_file():
        raise CheckpointError(f"{state_path}: missing (the checkpoint write did not finish)")
    try:
        state = read_json_object(state_path, "trainer state fields")
    except ValueError as error:
        raise CheckpointError(f"{error}; the checkpoint is corrupt") from None
    if not isinstance(state.get("files"), dict):
        raise CheckpointError(f"{state_path}: no 'files' record; not a checkpoint written by trainer.checkpointing.checkpoint")
    for name in MODEL_FILES:
        path, expected = directory / name, state["files"].get(name)
        if not path.is_file() or expected is None:
            raise CheckpointError(f"{path}: missing from the checkpoint")
        if not (isinstance(expected, dict) and isinstance(expected.get("bytes"), int)
                and isinstance(expected.get("sha256"), str)):
            raise CheckpointError(f"{state_path}: key 'files.{name}' = {expected!r:.80}, expected "
                                  f"{{\"bytes\": int, \"sha256\": str}}")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise CheckpointError(f"{path}: truncated or changed ({size} bytes, {expected['bytes']} were written)")
        if _file_digest(path)["sha256"] != expected["sha256"]:
            raise CheckpointError(f"{path}: corrupt (sha256 differs from the one recorded at write time)")
    return state


def list_step_checkpoints(output_dir: str | Path) -> list[Path]:
    """``step_*`` checkpoint directories, oldest first."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name)), key=lambda p: p.name)


def check_compatible(directory: str | Path, model_config: dict, vocab) -> list[str]:
    """Refuse a checkpoint whose model shape or vocabulary differs; returns notes on tolerated differences."""
    directory = Path(directory)
    try:  # types and ranges of every field, before anything is compared or built from it
        CaptionerConfig.load(directory / "config.json")
    except (FileNotFoundError, ValueError) as error:
        raise CheckpointError(str(error)) from None
    saved = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    problems, notes = [], []
    for key in sorted(set(saved) | set(model_config)):
        if saved.get(key) != model_config.get(key):
            message = f"model.{key}: checkpoint {saved.get(key)!r}, this run {model_config.get(key)!r}"
            (notes if key in NON_SHAPE_MODEL_FIELDS else problems).append(message)
    try:
        saved_words = json.loads((directory / "vocab.json").read_text(encoding="utf-8")).get("words", [])
    except (ValueError, AttributeError):
        saved_words = None
    if not isinstance(saved_words, list):
        raise CheckpointError(f"{directory / 'vocab.json'}: expected a JSON object with a list 'words'")
    words = vocab.itos[4:]
    if saved_words != words:
        first = next((i for i, (a, b) in enumerate(zip(saved_words, words)) if a != b),
                     min(len(saved_words), len(words)))
        problems.append(f"vocabulary: checkpoint has {len(saved_words)} words, this run {len(words)}; first "
                        f"difference at word #{first}")
    if problems:
        raise CheckpointError(f"{directory} was made by an incompatible config: " + "; ".join(problems))
    return notes


def load_checkpoint(directory: str | Path, model, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Verify ``directory``, load weights into the unwrapped ``model`` (and ``optimizer``); returns trainer_state."""
    directory = Path(directory)
    state = verify_checkpoint(directory)
    try:
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        if optimizer is not None:
            load_optimizer_safetensors(optimizer, directory / "optimizer.safetensors")
    except (SafetensorError, RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{directory}: cannot be loaded into this model/optimizer: "
                              f"{error}") from error
    return state


def prune_checkpoints(output_dir: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` step checkpoints (``best/`` lives elsewhere); returns the removed."""
    removed = list_step_checkpoints(output_dir)[:-keep_last]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
