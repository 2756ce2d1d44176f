"""Issue 9, trainer side: each row is a case that lost work, hung or gave a wrong result, and the test that pins the fix.

| item | what went wrong | what happens now | test |
|---|---|---|---|
| 1 | validation ran before the checkpoint; `eval.split` was never checked, so a missing `val` split ended a run with a traceback and no checkpoint | `train` and `eval.split` (dataset and feature cache) are checked before step 1; the checkpoint is written before validation; an exception inside validation is logged with its traceback and training goes on | `test_missing_eval_split_stops_before_step_1`, `test_failed_validation_keeps_the_checkpoint_and_training_goes_on`, `test_checkpoint_comes_before_validation_and_records_it` |
| 2 | a fresh run in a used `output_dir` mixed the runs: `best/` overwritten, new checkpoints pruned, `--resume latest` resumed the old run; all-corrupt checkpoints made `--resume latest` start from scratch | a fresh run there is an error naming `--resume latest` / `--overwrite` (which moves the old run aside); `best/` must belong to the resumed run; `--resume latest` without an intact checkpoint is an error, `--resume auto` may start fresh | `test_fresh_run_refuses_a_used_output_dir_and_overwrite_moves_it_aside`, `test_resume_latest_never_starts_from_scratch_silently`, `test_best_of_another_run_is_refused` |
| 7 | out-of-range values were accepted (`max_caption_len <= 0`, `gamma < 0`, `lr=inf`, negative intervals, exponential `k >= 1`, `floor > start`, fp16 on CPU) | every numeric field has a declared range checked at load; the message names key, value and range | `test_out_of_range_config_values_name_key_value_and_range`, `test_fp16_on_cpu_is_refused` |
| 10 | ENOSPC while checkpointing crashed with a traceback | one-line error on every rank naming the checkpoint; the partial copy goes, the previous checkpoints stay | `test_full_disk_while_checkpointing_keeps_previous_checkpoints` |
| 11 | SIGTERM exited 0; a resumed run appended duplicate steps to `train_log.jsonl`; a step checkpoint kept a stale `best_cider` | exit code 143 (130 for Ctrl-C) after the checkpoint (`tests/test_trainer_train.py`); the log is cut back to the resumed step; the validation result is recorded in the step's checkpoint and `best/` is reconciled on resume | `test_resume_truncates_the_train_log`, `test_checkpoint_comes_before_validation_and_records_it`, `test_exit_code_after_a_stop_signal` |
| 11 | a SIGTERM that arrived while the loader's workers started (every epoch) was dropped: the stop handlers were set to "ignore" for the fork, so the run trained on and a scheduler's SIGKILL would later lose the work (seen as a flaky `test_sigkill_mid_checkpoint_keeps_previous_then_sigterm_checkpoints` in CI) | the signals are blocked, not ignored, while workers start: the main process handles a held signal right after; the workers keep serving until it stops them | `test_a_stop_signal_while_loader_workers_start_is_not_lost` |
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate import Accelerator
from conftest import REPO
from test_trainer_loop import make_loop

from trainer.checkpointing import checkpoint as checkpoint_module
from trainer.checkpointing.checkpoint import CheckpointError, step_checkpoint_dir, verify_checkpoint
from trainer.checkpointing.run_dir import best_of_run, truncate_log
from trainer.config.schema import load_config
from trainer.distributed.run_control import StopRequest, iterate_isolated
from trainer.training import loop as loop_module
from trainer.training.run_setup import build_accelerator

TINY = ["model.encoder_weights=none", "model.feature_dim=16", "model.embed_dim=16", "model.attention_dim=16",
        "model.hidden_dim=32", "data.image_size=48", "data.num_workers=0", "train.global_batch_size=2",
        "eval.batch_size=4", "eval.max_len=4", "eval.beam_size=1", "logging.every_steps=1", "checkpoint.keep_last=5"]


def train(data: Path, output_dir: Path, *overrides: str, resume: str | None = None,
          overwrite: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "trainer" / "train.py"), *(["--resume", resume] if resume else []),
               *(["--overwrite"] if overwrite else []), f"data.root={data}", f"output_dir={output_dir}", *TINY,
               *overrides]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_missing_eval_split_stops_before_step_1(tiny_prepared, tmp_path):
    result = train(tiny_prepared, tmp_path / "run", "train.max_steps=2", "eval.split=nope")
    assert result.returncode == 1
    assert last_line(result).startswith("error: ") and "no split 'nope'" in last_line(result)
    assert "Traceback" not in result.stderr and not (tmp_path / "run" / "checkpoints").exists()


def test_failed_validation_keeps_the_checkpoint_and_training_goes_on(tiny_prepared, tmp_path, monkeypatch, caplog):
    def broken_validation(*args, **kwargs):
        raise RuntimeError("metric backend exploded")

    monkeypatch.setattr(loop_module, "validate", broken_validation)
    loop = make_loop(tiny_prepared, tmp_path, "train.max_steps=4", "eval.every_steps=2", "checkpoint.every_steps=2")
    loop.run()
    assert loop.progress.step == 4  # training went on past the failed validation at step 2
    for step in (2, 4):
        assert verify_checkpoint(step_checkpoint_dir(tmp_path, step))["step"] == step
    failures = [record for record in caplog.records if "validation at step" in record.getMessage()]
    assert failures and failures[0].exc_info is not None  # logged with its traceback
    assert not (tmp_path / "best").exists()


def test_checkpoint_comes_before_validation_and_records_it(tiny_prepared, tmp_path, monkeypatch):
    order = []
    real_validate, real_save = loop_module.validate, loop_module.TrainingLoop.save

    def spy_validate(*args, **kwargs):
        order.append("validate")
        return real_validate(*args, **kwargs)

    def spy_save(self, target, keep_last):
        order.append(Path(target).name)
        return real_save(self, target, keep_last)

    monkeypatch.setattr(loop_module, "validate", spy_validate)
    monkeypatch.setattr(loop_module.TrainingLoop, "save", spy_save)
    loop = make_loop(tiny_prepared, tmp_path, "train.max_steps=2", "eval.every_steps=2", "checkpoint.every_steps=2")
    loop.run()
    assert order == ["step_00000002", "validate", "best"]
    state = verify_checkpoint(step_checkpoint_dir(tmp_path, 2))  # still intact after its state was re-stamped
    best = verify_checkpoint(tmp_path / "best")
    assert state["validated_step"] == 2 and state["best_step"] == 2
    assert state["best_cider"] == best["best_cider"] is not None


def test_resume_after_checkpoint_but_before_validation_validates_first(tiny_prepared, tmp_path, monkeypatch):
    """A run killed between the checkpoint and its validation validates that step when resumed."""
    calls = []
    monkeypatch.setattr(loop_module, "validate", lambda *args, **kwargs: calls.append(1) or (_ for _ in ()).throw(
        RuntimeError("killed")))
    first = make_loop(tiny_prepared, tmp_path, "train.max_steps=4", "eval.every_steps=2", "checkpoint.every_steps=2",
                      "train.stop_at_step=2")
    first.run()
    assert verify_checkpoint(step_checkpoint_dir(tmp_path, 2))["validated_step"] is None
    monkeypatch.undo()
    resumed = make_loop(tiny_prepared, tmp_path, "train.max_steps=4", "eval.every_steps=2",
                        "checkpoint.every_steps=2", resume="latest")
    resumed.state.progress.step, resumed.state.checkpointed_step = 2, 2
    resumed.run()
    assert resumed.log.validation_steps == [2, 4]


def test_fresh_run_refuses_a_used_output_dir_and_overwrite_moves_it_aside(tiny_prepared, tmp_path):
    run = tmp_path / "run"
    assert train(tiny_prepared, run, "train.max_steps=2", "eval.every_steps=0").returncode == 0
    weights = (step_checkpoint_dir(run, 2) / "model.safetensors").read_bytes()
    refused = train(tiny_prepared, run, "train.max_steps=2", "seed=1")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "--resume latest" in last_line(refused) and "--overwrite" in last_line(refused)
    assert (step_checkpoint_dir(run, 2) / "model.safetensors").read_bytes() == weights  # untouched
    replaced = train(tiny_prepared, run, "train.max_steps=2", "seed=1", overwrite=True)
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    moved = [path for path in tmp_path.iterdir() if path.name.startswith("run.replaced-")]
    assert len(moved) == 1 and (step_checkpoint_dir(moved[0], 2) / "model.safetensors").read_bytes() == weights
    assert (step_checkpoint_dir(run, 2) / "model.safetensors").read_bytes() != weights  # the new run (seed 1)


def test_resume_latest_never_starts_from_scratch_silently(tiny_prepared, tmp_path):
    empty = train(tiny_prepared, tmp_path / "empty", "train.max_steps=1", resume="latest")
    assert empty.returncode == 1 and "no checkpoint" in last_line(empty) and "--resume auto" in last_line(empty)
    auto = train(tiny_prepared, tmp_path / "auto", "train.max_steps=1", "eval.every_steps=0", resume="auto")
    assert auto.returncode == 0 and verify_checkpoint(step_checkpoint_dir(tmp_path / "auto", 1))["step"] == 1
    (step_checkpoint_dir(tmp_path / "auto", 1) / "model.safetensors").write_bytes(b"corrupt")
    for spec in ("latest", "auto"):
        corrupt = train(tiny_prepared, tmp_path / "auto", "train.max_steps=2", resume=spec)
        assert corrupt.returncode == 1 and "corrupt" in last_line(corrupt), corrupt.stderr[-2000:]


def test_best_of_another_run_is_refused(tmp_path):
    best = tmp_path / "best"
    best.mkdir()
    (best / "trainer_state.json").write_text(json.dumps({"run_id": "other", "files": {}}))
    with pytest.raises(CheckpointError, match="belongs to run 'other'"):
        best_of_run(tmp_path, "mine")
    assert best_of_run(tmp_path / "nothing-here", "mine") is None


def test_resume_truncates_the_train_log(tiny_prepared, tmp_path):
    run = tmp_path / "run"
    common = ["train.max_steps=4", "eval.every_steps=0", "checkpoint.every_steps=2"]
    assert train(tiny_prepared, run, *common, "train.stop_at_step=3").returncode == 0  # logs steps 1..3
    resumed = train(tiny_prepared, run, *common, resume=str(step_checkpoint_dir(run, 2)))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    steps = [json.loads(line)["step"] for line in (run / "train_log.jsonl").read_text().splitlines()
             if "train/loss" in json.loads(line)]
    assert steps == [1, 2, 3, 4]


def test_truncate_log_drops_later_and_torn_lines(tmp_path):
    lines = [json.dumps({"step": step, "train/loss": 1.0}) for step in (1, 2, 3)] + ['{"step": 4, "train/lo']
    (tmp_path / "train_log.jsonl").write_text("\n".join(lines))
    assert truncate_log(tmp_path, 2) == 2
    assert [json.loads(line)["step"] for line in (tmp_path / "train_log.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.parametrize("override, message", [
    ("data.max_caption_len=0", "'data.max_caption_len' = 0 is out of range: expected 1 <= value"),
    ("schedule.gamma=-0.5", "'schedule.gamma' = -0.5 is out of range: expected 0 < value <= 1"),
    ("optim.lr=.inf", "'optim.lr' = inf must be a finite number"),
    ("optim.lr=0", "'optim.lr' = 0.0 is out of range: expected 0 < value"),
    ("eval.every_steps=-5", "'eval.every_steps' = -5 is out of range: expected 0 <= value"),
    ("checkpoint.every_steps=-1", "'checkpoint.every_steps' = -1 is out of range"),
    ("eval.max_len=0", "'eval.max_len' = 0 is out of range"),
    ("data.image_size=8", "'data.image_size' = 8 is out of range: expected 32 <= value"),
    ("model.dropout=1.5", "config section 'model': CaptionerConfig.dropout must be in [0, 1)"),
])
def test_out_of_range_config_values_name_key_value_and_range(override, message):
    with pytest.raises(ValueError) as error:
        load_config(None, ["data.root=/x", override])
    assert message in str(error.value)


@pytest.mark.parametrize("overrides, message", [
    (["teacher_forcing.schedule=exponential", "teacher_forcing.k=1.5"], "decays only for 0 < k < 1"),
    (["teacher_forcing.start=0.5", "teacher_forcing.floor=0.8"], "expected floor <= start"),
    (["teacher_forcing.schedule=inverse_sigmoid", "teacher_forcing.k=0.5"], "needs k >= 1"),
])
def test_inconsistent_teacher_forcing_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, ["data.root=/x", *overrides])


def test_fp16_on_cpu_is_refused(monkeypatch):
    config = load_config(None, ["data.root=/x", "mixed_precision=fp16"])
    monkeypatch.setattr(Accelerator, "__init__", lambda self, **kwargs: None)  # no autocast set-up needed
    monkeypatch.setattr(Accelerator, "device", property(lambda self: __import__("torch").device("cpu")))
    monkeypatch.setattr("trainer.training.run_setup.check_process_group", lambda accelerator: None)
    with pytest.raises(ValueError, match="'mixed_precision' = 'fp16' needs a CUDA device"):
        build_accelerator(config)


def test_full_disk_while_checkpointing_keeps_previous_checkpoints(tiny_prepared, tmp_path, monkeypatch):
    loop = make_loop(tiny_prepared, tmp_path, "train.max_steps=4", "eval.every_steps=0", "checkpoint.every_steps=2")
    real_write = checkpoint_module.optimizer_to_safetensors
    calls = []

    def full_disk(optimizer, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(optimizer, path)

    monkeypatch.setattr(checkpoint_module, "optimizer_to_safetensors", full_disk)
    with pytest.raises(CheckpointError, match=r"writing checkpoint .*step_00000004 failed: No space left on device; "
                                              r"the previous checkpoints are intact"):
        loop.run()
    assert verify_checkpoint(step_checkpoint_dir(tmp_path, 2))["step"] == 2
    assert not step_checkpoint_dir(tmp_path, 4).exists()
    assert not list((tmp_path / "checkpoints").glob(".*partial*"))


@pytest.fixture
def stop_request():
    stop = StopRequest()
    yield stop
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)


def test_exit_code_after_a_stop_signal(stop_request):
    assert stop_request.exit_code == 0
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop_request.requested and stop_request.exit_code == 143


class SignalledWhileStarting:
    """A loader that gets SIGTERM while its iterator starts, as when a scheduler's signal lands while workers fork."""

    def __iter__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        return iter([1, 2])


def test_a_stop_signal_while_loader_workers_start_is_not_lost(stop_request):
    assert list(iterate_isolated(SignalledWhileStarting())) == [1, 2]
    assert stop_request.requested and stop_request.exit_code == 143
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, [])  # nothing left blocked in this thread
