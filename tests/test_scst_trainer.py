"""SCST in the trainer, in this process: config section, train.init_from (weights only), one SCST step with its
logged statistics, the greedy baseline, and the note about ignored scheduled-sampling settings."""
import logging
import shutil

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file
from test_trainer_loop import first_batch

from trainer.checkpointing.checkpoint import CheckpointError
from trainer.config.schema import load_config
from trainer.scst.df_cache import CACHE_NAME
from trainer.scst.loop import ScstTrainingLoop, build_reward
from trainer.training.loop import TrainingLoop
from trainer.training.run_setup import TrainingRun, build_accelerator, set_up_run

TINY = ["model.encoder_weights=none", "model.feature_dim=16", "model.embed_dim=16", "model.attention_dim=16",
        "model.hidden_dim=32", "data.image_size=48", "data.num_workers=0", "train.global_batch_size=2",
        "train.max_steps=3", "eval.batch_size=4", "eval.max_len=4", "eval.beam_size=1", "logging.every_steps=1",
        "eval.every_steps=0", "checkpoint.every_steps=0", "scst.max_len=6"]
SCST_TAGS = ("train/loss", "train/policy_loss", "train/attention_reg", "train/reward", "train/baseline",
             "train/advantage_std", "train/sample_len", "train/entropy", "train/grad_norm", "train/lr",
             "train/reward_time_share")


class RecordingLog:
    def __init__(self):
        self.records = []

    def scalars(self, values: dict, step: int) -> None:
        self.records.append((step, values))

    def validation(self, result, step: int) -> None:
        pass


class NoStop:
    requested, signal_name = False, None

    def poll(self, accelerator) -> bool:
        return False


@pytest.fixture
def data(tiny_prepared, tmp_path):
    """A private copy of the tiny dataset: the SCST loop caches its document frequencies inside it."""
    return shutil.copytree(tiny_prepared, tmp_path / "data")


def set_up(data, output_dir, *overrides, resume=None) -> TrainingRun:
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    config = load_config(None, [f"data.root={data}", f"output_dir={output_dir}", *TINY, *overrides])
    run = set_up_run(config, build_accelerator(config), resume)
    run.release()
    return run


def xe_checkpoint(data, tmp_path):
    """A real checkpoint after one XE step (the start of an SCST stage)."""
    loop = TrainingLoop(set_up(data, tmp_path / "xe"), RecordingLog(), NoStop())
    assert loop.train_step(first_batch(loop), 0)
    loop.checkpoint()
    return tmp_path / "xe" / "checkpoints" / "step_00000001"


def scst_loop(data, tmp_path, *overrides):
    run = set_up(data, tmp_path / "scst", "train.objective=scst", *overrides)
    return ScstTrainingLoop(run, RecordingLog(), NoStop(), reward=build_reward(run.accelerator, run.config, run.vocab))


def test_scst_config_section_defaults_and_range_errors():
    config = load_config(None, ["data.root=x"])
    assert config.train.objective == "xe" and config.train.init_from is None
    assert (config.scst.samples, config.scst.baseline, config.scst.temperature) == (5, "mean_others", 1.0)
    with pytest.raises(ValueError, match="'scst.samples' = 1: baseline mean_others needs at least 2"):
        load_config(None, ["data.root=x", "scst.samples=1"])
    with pytest.raises(ValueError, match="'scst.temperature' = 0.0 is out of range"):
        load_config(None, ["data.root=x", "scst.temperature=0"])
    assert load_config(None, ["data.root=x", "scst.samples=1", "scst.baseline=greedy"]).scst.samples == 1
    with pytest.raises(ValueError, match="'scst.baseline'.*mean_others"):
        load_config(None, ["data.root=x", "scst.baseline=average"])
    with pytest.raises(ValueError, match="'train.objective'"):
        load_config(None, ["data.root=x", "train.objective=rl"])


def test_init_from_loads_weights_with_a_fresh_optimizer_and_schedule(data, tmp_path):
    source = xe_checkpoint(data, tmp_path)
    run = set_up(data, tmp_path / "scst", "train.objective=scst", f"train.init_from={source}", "optim.lr=3e-5")
    model, optimizer, scheduler, progress = run.model, run.optimizer, run.scheduler, run.progress
    weights = load_file(str(source / "model.safetensors"))
    captioner = model.captioner
    assert all(torch.equal(tensor, weights[name]) for name, tensor in captioner.state_dict().items())
    assert (progress.step, progress.epoch, progress.best_cider) == (0, 0, None) and optimizer.state_dict()["state"] == {}
    assert scheduler.get_last_lr()[0] == pytest.approx(3e-5)
    with pytest.raises(CheckpointError, match="missing: checkpoint directory does not exist"):
        set_up(data, tmp_path / "other", f"train.init_from={tmp_path / 'missing'}")


def test_scst_step_trains_and_logs_its_statistics(data, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="trainer.train")
    loop = scst_loop(data, tmp_path, f"train.init_from={xe_checkpoint(data, tmp_path)}",
                     "teacher_forcing.schedule=linear", "teacher_forcing.decay=0.1")
    assert "ignoring teacher_forcing (schedule linear" in caplog.text
    assert (data / CACHE_NAME).is_file()
    before = [p.detach().clone() for p in loop.unwrapped.trainable_parameters()]
    assert loop.train_step(first_batch(loop), 0) and loop.progress.step == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, loop.unwrapped.trainable_parameters()))
    loop.log_interval()
    step, scalars = loop.log.records[-1]
    assert step == 1 and set(SCST_TAGS) <= set(scalars) and "train/teacher_forcing_ratio" not in scalars
    assert scalars["train/reward"] >= 0 and scalars["train/reward"] == pytest.approx(scalars["train/baseline"])
    assert 0 <= scalars["train/sample_len"] <= 6 and scalars["train/entropy"] > 0
    assert 0 < scalars["train/reward_time_share"] < 1


def test_greedy_baseline_step(data, tmp_path):
    loop = scst_loop(data, tmp_path, "scst.baseline=greedy", "scst.samples=2")
    assert loop.train_step(first_batch(loop), 0)
    loop.log_interval()
    scalars = loop.log.records[-1][1]
    assert torch.isfinite(torch.tensor([scalars[tag] for tag in SCST_TAGS])).all()
