"""Issue 22, checkpoints from elsewhere: each row is a case tried as a hostile or careless user would, and the test that
pins the fix (docs/runs-and-checkpoints.md).

| case | what went wrong | what happens now | test |
|---|---|---|---|
| acc. 5 | newest checkpoint corrupt, `--resume latest`: resumed from the one before without a word | WARNING naming the skipped checkpoint and the reason | `test_a_skipped_corrupt_checkpoint_is_a_warning_with_path_and_reason` |
| R2 | `data.root` changed to other images, `--resume latest`: one INFO line | checkpoints record the dataset fingerprint; another one is refused unless `--allow-data-change`; changed config fields are listed at WARNING | `test_resume_on_another_dataset_is_refused_unless_allowed` |
| S12b | `step: -5` in trainer_state.json trained 11 steps; `"abc"` / `null` / wrong types: tracebacks | every field the trainer reads is checked (type, range, consistency): one line naming file, key, value, expectation | `test_trainer_state_fields_are_checked_before_use` |
| config | `hidden_dim: 1e9` in a checkpoint's config.json: allocation error | types and upper bounds checked when a config is read, before any allocation; the error names the file | `test_absurd_model_config_is_refused_before_allocation` |
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from modeling import Captioner, CaptionerConfig
from trainer.checkpointing.checkpoint import MODEL_FILES, STATE_FILE, CheckpointError, step_checkpoint_dir
from trainer.checkpointing.run_dir import find_resume_checkpoint
from trainer.checkpointing.state_checks import check_trainer_state
from trainer.checkpointing.train_state import restore_training_checkpoint

VALID_STATE = {"format_version": 2, "step": 4, "epoch": 0, "step_in_epoch": 4, "samples_seen": 8, "run_id": "aaaa",
               "world_size": 1, "rng": [{}], "scheduler": {"last_epoch": 4}, "config_hash": "x", "train_config": {}}


def stub_checkpoint(directory: Path, **state) -> Path:
    """A checkpoint that ``verify_checkpoint`` accepts (small stand-in files with their digests recorded)."""
    directory.mkdir(parents=True)
    files = {}
    for name in MODEL_FILES:
        payload = f"stand-in {name}".encode()
        (directory / name).write_bytes(payload)
        files[name] = {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    (directory / STATE_FILE).write_text(json.dumps({**VALID_STATE, **state, "files": files}))
    return directory


def test_a_skipped_corrupt_checkpoint_is_a_warning_with_path_and_reason(tmp_path, caplog):
    older = stub_checkpoint(step_checkpoint_dir(tmp_path, 2))
    newest = stub_checkpoint(step_checkpoint_dir(tmp_path, 4))
    (newest / "model.safetensors").write_bytes(b"cut")
    with caplog.at_level(logging.WARNING):
        assert find_resume_checkpoint("latest", tmp_path) == older
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(newest) in warnings[0] and "truncated or changed" in warnings[0]


@pytest.mark.slow  # ~35 s: a real one-step run and its checkpoint
def test_resume_on_another_dataset_is_refused_unless_allowed(tiny_prepared, tmp_path, caplog):
    from test_trainer_loop import make_loop

    loop = make_loop(tiny_prepared, tmp_path / "run", "train.max_steps=1", "eval.every_steps=0",
                     "checkpoint.every_steps=1")
    loop.run()
    checkpoint = step_checkpoint_dir(tmp_path / "run", 1)
    other = tmp_path / "other"  # the same vocabulary, other images: here, another manifest
    other.mkdir()
    for path in tiny_prepared.iterdir():
        (other / path.name).symlink_to(path)
    (other / "manifest.json").unlink()
    manifest = json.loads((tiny_prepared / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "seed": 99}))
    changed = make_loop(other, tmp_path / "changed", "train.max_steps=3", "eval.every_steps=0")
    arguments = (changed.accelerator, checkpoint, changed.unwrapped, changed.optimizer, changed.scheduler,
                 changed.vocab, changed.config, changed.data_order)
    with pytest.raises(CheckpointError, match="trained on another dataset .*--allow-data-change"):
        restore_training_checkpoint(*arguments)
    with caplog.at_level(logging.WARNING):
        progress = restore_training_checkpoint(*arguments, allow_data_change=True)
    assert progress.step == 1
    warnings = " ".join(record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
    assert "another dataset" in warnings and "train.max_steps: 1 -> 3" in warnings and "data.root: " in warnings


@pytest.mark.parametrize("field, value, expected", [
    ("step", -5, "key 'step' = -5, expected an int >= 0"),
    ("step", "abc", "key 'step' = \"abc\", expected an int >= 0"),
    ("step", None, "key 'step' = null, expected an int >= 0"),
    ("epoch", [1], "key 'epoch' = [1], expected an int >= 0"),
    ("best_cider", "high", "key 'best_cider' = \"high\", expected a finite number >= 0 or null"),
    ("step_in_epoch", 9, "key 'step_in_epoch' = 9, expected at most step = 4"),
    ("format_version", 7, "key 'format_version' = 7, expected 2"),
    ("rng", [], "key 'rng' = [], expected a non-empty list"),
    ("scheduler", {"last_epoch": True}, "key 'scheduler.last_epoch' = true, expected an int >= 0"),
    ("stage_end", -1, "key 'stage_end' = -1, expected an int >= 0 or null"),
    ("evals_without_gain", 1.5, "key 'evals_without_gain' = 1.5, expected an int >= 0"),
    ("stop_reason", "bored", "key 'stop_reason' = \"bored\", expected one of \"\", \"plateau\", \"budget\""),
])
def test_trainer_state_fields_are_checked_before_use(tmp_path, field, value, expected):
    checkpoint = stub_checkpoint(tmp_path / "ckpt", **{field: value})
    with pytest.raises(CheckpointError) as error:  # refused before the model, optimizer or accelerator are touched
        restore_training_checkpoint(None, checkpoint, None, None, None, None, None, None)
    assert str(error.value).startswith(f"{checkpoint / STATE_FILE}: {expected}")
    assert check_trainer_state(dict(VALID_STATE), "x") == VALID_STATE  # the reference state itself passes


@pytest.mark.parametrize("field, value", [("hidden_dim", 10**9), ("hidden_dim", 1e9), ("vocab_size", True),
                                          ("dropout", "0.5"), ("grid_size", 10**6)])
def test_absurd_model_config_is_refused_before_allocation(tmp_path, field, value):
    directory = tmp_path / "ckpt"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({**CaptionerConfig(vocab_size=10).to_dict(), field: value}))
    for load in (CaptionerConfig.load, lambda path: Captioner.from_pretrained(path.parent)):
        with pytest.raises(ValueError) as error:
            load(directory / "config.json")
        assert str(error.value).startswith(f"{directory / 'config.json'}: CaptionerConfig.{field} must be")
        assert repr(value) in str(error.value) and "\n" not in str(error.value)
