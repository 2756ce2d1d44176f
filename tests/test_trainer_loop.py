"""trainer.training.loop driven step by step in this process (no subprocess): one micro-batch, logging, validation and
checkpoint cadence, the finishing checkpoint, and the data position a checkpoint records."""
import json
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState

from data_pipelines.train_stream import build_lane_loader
from trainer.checkpointing.checkpoint import step_checkpoint_dir, verify_checkpoint
from trainer.checkpointing.train_state import Progress
from trainer.config.schema import load_config
from trainer.training.loop import TrainingLoop, data_position
from trainer.training.run_setup import build_accelerator, set_up_run

TINY = ["model.encoder_weights=none", "model.feature_dim=16", "model.embed_dim=16", "model.attention_dim=16",
        "model.hidden_dim=32", "data.image_size=48", "data.num_workers=0", "train.global_batch_size=2",
        "train.max_steps=3", "eval.batch_size=4", "eval.max_len=4", "eval.beam_size=1", "logging.every_steps=2",
        "eval.every_steps=2", "checkpoint.every_steps=3", "checkpoint.keep_last=5"]


class RecordingLog:
    def __init__(self):
        self.scalar_steps, self.validation_steps = [], []

    def scalars(self, values: dict, step: int) -> None:
        assert set(values) >= {"train/loss", "train/ce", "train/attention_reg", "train/grad_norm", "train/lr"}
        self.scalar_steps.append(step)

    def validation(self, result, step: int) -> None:
        self.validation_steps.append(step)


class NoStop:
    requested, signal_name = False, None

    def poll(self, accelerator) -> bool:
        return False


def make_loop(data: Path, output_dir: Path, *overrides: str, resume: str | None = None) -> TrainingLoop:
    """The loop ``trainer/train.py`` would run, set up in this process (``output_dir`` left unlocked)."""
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    config = load_config(None, [f"data.root={data}", f"output_dir={output_dir}", *TINY, *overrides])
    run = set_up_run(config, build_accelerator(config), resume)
    run.release()
    return TrainingLoop(run, RecordingLog(), NoStop())


def first_batch(loop: TrainingLoop) -> dict:
    loader = build_lane_loader(loop.sources, loop.vocab, loop.loader_options, loop.plan.global_batch_size,
                               loop.lanes)
    loop.state.steps_per_epoch = loader.stream.steps_per_epoch
    return next(iter(loader))


def test_train_step_updates_weights_and_progress(tiny_prepared, tmp_path):
    loop = make_loop(tiny_prepared, tmp_path)
    before = [p.detach().clone() for p in loop.unwrapped.trainable_parameters()]
    assert loop.train_step(first_batch(loop), batch_index=0) is True
    assert loop.progress.step == 1 and loop.progress.step_in_epoch == 1 and loop.progress.samples_seen == 2
    assert loop.state.step_losses.shape == (3,) and torch.isfinite(loop.state.step_losses).all()
    assert loop.state.micro_batch_losses == []
    after = list(loop.unwrapped.trainable_parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_grad_accumulation_completes_a_step_every_second_micro_batch(tiny_prepared, tmp_path):
    loop = make_loop(tiny_prepared, tmp_path, "train.global_batch_size=4", "train.micro_batch_size=2")
    batch = first_batch(loop)
    assert loop.train_step(batch, 0) is False and loop.progress.step == 0 and len(loop.state.micro_batch_losses) == 1
    assert loop.train_step(batch, 1) is True and loop.progress.step == 1 and loop.progress.samples_seen == 4


def test_log_validate_checkpoint_cadence(tiny_prepared, tmp_path):
    loop = make_loop(tiny_prepared, tmp_path)
    batch = first_batch(loop)
    stops = []
    for index in range(3):
        assert loop.train_step(batch, index)
        stops.append(loop.at_step_boundary())
    assert stops == [False, False, True]  # max_steps=3
    assert loop.log.scalar_steps == [2, 3]  # every 2 steps and at the last
    assert loop.log.validation_steps == [2]
    assert (tmp_path / "best").is_dir() and not step_checkpoint_dir(tmp_path, 2).exists()
    assert verify_checkpoint(step_checkpoint_dir(tmp_path, 3))["step"] == 3
    assert loop.state.checkpointed_step == 3 and loop.state.validated_step == 2
    loop.finish()  # validates the last step once; step 3 is already checkpointed
    assert loop.log.validation_steps == [2, 3]


def test_run_trains_to_max_steps_and_checkpoints_the_data_position(tiny_prepared, tmp_path):
    loop = make_loop(tiny_prepared, tmp_path, "train.max_steps=4", "checkpoint.every_steps=0", "eval.every_steps=0")
    loop.run()
    assert loop.progress.step == 4 and loop.log.validation_steps == [4]
    state = verify_checkpoint(step_checkpoint_dir(tmp_path, 4))
    steps = loop.state.steps_per_epoch  # 7 train images in global batches of 2: 3 steps per epoch
    assert steps == 3 and (state["epoch"], state["step_in_epoch"]) == (1, 1)
    assert json.loads((tmp_path / "checkpoints" / "step_00000004" / "trainer_state.json").read_text())["step"] == 4


@pytest.mark.parametrize("stop_at_step", [2])
def test_stop_at_step_checkpoints_without_final_validation(tiny_prepared, tmp_path, stop_at_step):
    loop = make_loop(tiny_prepared, tmp_path, f"train.stop_at_step={stop_at_step}", "eval.every_steps=0")
    loop.run()
    assert loop.progress.step == stop_at_step and loop.log.validation_steps == []
    assert verify_checkpoint(step_checkpoint_dir(tmp_path, stop_at_step))["step"] == stop_at_step


def test_data_position_rolls_over_finished_epoch():
    assert data_position(Progress(step=9, epoch=0, step_in_epoch=9), steps_per_epoch=9).epoch == 1
    assert data_position(Progress(step=9, epoch=0, step_in_epoch=9), steps_per_epoch=9).step_in_epoch == 0
    assert data_position(Progress(step=4, epoch=2, step_in_epoch=4), steps_per_epoch=9).epoch == 2
