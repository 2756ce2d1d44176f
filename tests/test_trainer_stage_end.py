"""Issue 26: a run's end decided by validation (trainer.training.stage_end): ``eval.patience`` / ``eval.min_gain``
("plateau"), ``train.max_minutes`` ("budget"), the wsd schedule decaying to the decided end, ``run_summary.json``,
resume after the decision, and existing configs unchanged. The loop runs in this process with scripted CIDEr-D."""
import json
from functools import partial
from pathlib import Path

import pytest
import torch
from test_trainer_loop import RecordingLog, make_loop

from trainer.checkpointing.checkpoint import step_checkpoint_dir, verify_checkpoint
from trainer.checkpointing.train_state import Progress
from trainer.config.schema import load_config
from trainer.training import loop as loop_module
from trainer.training.schedules import RunEnd, lr_multiplier, scheduled_lr_multiplier
from trainer.training.stage_end import SUMMARY_FILE, EndOfRun, counts_as_gain
from trainer.training.validation import ValidationResult

REPO = Path(__file__).resolve().parents[1]
RUN = ["train.max_steps=20", "eval.every_steps=2", "checkpoint.every_steps=0", "logging.every_steps=1"]


class LrLog(RecordingLog):
    """Records the lr each optimizer step used (``logging.every_steps=1``)."""

    def __init__(self):
        super().__init__()
        self.lrs = {}

    def scalars(self, values: dict, step: int) -> None:
        super().scalars(values, step)
        self.lrs[step] = values["train/lr"]


def scripted_loop(monkeypatch, data, output_dir, cider_at_step: dict, *overrides, resume=None):
    """A loop whose validation at step s scores CIDEr-D ``cider_at_step[s]`` (no decoding)."""
    loop = make_loop(data, output_dir, *RUN, *overrides, resume=resume)
    loop.log = LrLog()
    monkeypatch.setattr(loop_module, "validate", lambda *args: ValidationResult(
        metrics={"CIDEr": cider_at_step[loop.progress.step]}, num_images=1))
    return loop


def summary(output_dir: Path) -> dict:
    return json.loads((output_dir / SUMMARY_FILE).read_text())


def test_plateau_ends_a_cosine_run_at_the_validation_that_decides(tiny_prepared, tmp_path, monkeypatch, caplog):
    loop = scripted_loop(monkeypatch, tiny_prepared, tmp_path, {2: 0.5, 4: 0.6, 6: 0.6, 8: 0.55},
                         "eval.patience=2", "train.max_steps=10")  # step 8: the last quarter of the budget
    with caplog.at_level("INFO", logger="trainer.train"):
        loop.run()
    assert loop.progress.step == 8 and loop.log.validation_steps == [2, 4, 6, 8]  # step 8 is not validated twice
    assert (loop.progress.stage_end, loop.progress.stop_reason, loop.progress.evals_without_gain) == (8, "plateau", 2)
    assert summary(tmp_path) == {"objective": "xe", "steps": 8, "stop_reason": "plateau", "stage_end": 8,
                                 "best_step": 4, "best_cider": 0.6, "wall_seconds": summary(tmp_path)["wall_seconds"],
                                 "max_steps": 10}
    state = verify_checkpoint(step_checkpoint_dir(tmp_path, 8))  # the end is what a resume reads
    assert (state["stage_end"], state["stop_reason"], state["evals_without_gain"]) == (8, "plateau", 2)
    messages = [record.getMessage() for record in caplog.records]
    assert "val CIDEr-D has not improved for 2 evaluations: ending at step 8" in messages
    assert "run ended at step 8 (plateau): best val CIDEr-D 0.6000 at step 4" in messages


def test_min_gain_counts_a_tiny_gain_as_none(tiny_prepared, tmp_path, monkeypatch):
    assert counts_as_gain(0.506, 0.5, 0.01) and not counts_as_gain(0.505, 0.5, 0.01)
    assert counts_as_gain(0.0, None, 0.01)  # the first validation of a run
    loop = scripted_loop(monkeypatch, tiny_prepared, tmp_path, {2: 0.5, 4: 0.504}, "eval.patience=1",
                         "eval.min_gain=0.01", "train.max_steps=5")
    loop.run()
    assert loop.progress.step == 4 and summary(tmp_path)["stop_reason"] == "plateau"
    assert (loop.progress.best_step, loop.progress.best_cider) == (4, 0.504)  # best/ still follows any gain


def expected_lr(config, end: int | None, step: int) -> float:
    return config.optim.lr * lr_multiplier(step, config.train.max_steps, config.schedule, end)


WSD = ["schedule.name=wsd", "schedule.warmup_steps=2", "schedule.decay_steps=4", "schedule.min_lr_ratio=0.1"]


def test_wsd_is_constant_then_decays_over_decay_steps_to_the_decided_end(tiny_prepared, tmp_path, monkeypatch):
    loop = scripted_loop(monkeypatch, tiny_prepared, tmp_path, {2: 0.5, 4: 0.4, 6: 0.4, 8: 0.3}, *WSD,
                         "eval.patience=1")
    loop.run()
    lr = loop.config.optim.lr
    assert loop.progress.step == 8 and summary(tmp_path)["stop_reason"] == "plateau"  # decided at step 4
    lrs = [loop.log.lrs[step] for step in range(1, 9)]  # logged at step s: the lr of optimizer step s - 1
    assert lrs[:5] == pytest.approx([lr / 2, lr, lr, lr, lr])  # warmup, then constant up to the decision
    assert all(later < earlier for earlier, later in zip(lrs[4:], lrs[5:]))  # the decay over the last 4 steps
    assert lrs[7] == pytest.approx(lr * (0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(3 / 4 * torch.pi)).item())))
    assert lrs == [expected_lr(loop.config, 8, step) for step in range(8)]
    assert loop.scheduler.get_last_lr()[0] == pytest.approx(0.1 * lr)  # min_lr_ratio at the end
    assert loop.log.validation_steps == [2, 4, 6, 8]


def test_an_early_wsd_plateau_decays_the_lr_and_training_goes_on_at_its_floor(tiny_prepared, tmp_path, monkeypatch):
    scores = {2: 0.5, 4: 0.4, 6: 0.6, 8: 0.7, 10: 0.65}  # step 4: decay over 4-8; gains; no gain at 10: converged
    loop = scripted_loop(monkeypatch, tiny_prepared, tmp_path, scores, *WSD, "eval.patience=1")
    loop.run()
    lr = loop.config.optim.lr
    assert (loop.progress.step, loop.progress.decay_end, summary(tmp_path)["stop_reason"]) == (10, 8, "plateau")
    lrs = [loop.log.lrs[step] for step in range(1, 11)]
    assert lrs == [expected_lr(loop.config, 8, step) for step in range(10)]
    assert lrs[8:] == pytest.approx([0.1 * lr] * 2)  # after the decay: the floor
    assert verify_checkpoint(step_checkpoint_dir(tmp_path, 10))["decay_end"] == 8


def test_wsd_undecided_decays_at_the_end_of_max_steps():
    schedule = load_config(None, ["data.root=x", "train.max_steps=20", *WSD]).schedule
    assert [lr_multiplier(step, 20, schedule) for step in range(2, 17)] == [1.0] * 15
    assert lr_multiplier(17, 20, schedule) < 1.0 and lr_multiplier(20, 20, schedule) == pytest.approx(0.1)


class StepClock:
    """A fake wall clock: a minute per optimizer step of ``loop``."""

    def __init__(self, loop):
        self.loop = loop

    def __call__(self) -> float:
        return 60.0 * self.loop.progress.step


@pytest.mark.parametrize("overrides, decided_at, end", [([], 4, 4), (["schedule.name=wsd", "schedule.decay_steps=2"],
                                                                      2, 4)])
def test_budget_ends_the_run_before_it_would_run_out(tiny_prepared, tmp_path, monkeypatch, caplog, overrides,
                                                     decided_at, end):
    scores = {step: 0.1 * step for step in range(2, 21, 2)}  # always improving: only the budget can end it
    loop = scripted_loop(monkeypatch, tiny_prepared, tmp_path, scores, "train.max_minutes=5.5", *overrides)
    loop.end_of_run.clock, loop.end_of_run.started = StepClock(loop), 0.0
    with caplog.at_level("INFO", logger="trainer.train"):
        loop.run()
    assert loop.progress.step == end and summary(tmp_path)["stop_reason"] == "budget"
    assert summary(tmp_path)["wall_seconds"] == 60.0 * end <= 5.5 * 60  # within the budget
    decided = [record.getMessage() for record in caplog.records if "time budget" in record.getMessage()]
    assert len(decided) == 1 and f"({decided_at:.1f} min so far, 60.00 s per step)" in decided[0]
    assert decided[0].split(": ending at step ")[1].startswith(str(end))


def test_resume_after_the_decision_keeps_the_end_and_the_lr(tiny_prepared, tmp_path, monkeypatch):
    scores = {2: 0.5, 4: 0.4, 6: 0.45, 8: 0.3}
    straight = scripted_loop(monkeypatch, tiny_prepared, tmp_path / "straight", scores, *WSD, "eval.patience=1")
    straight.run()
    first = scripted_loop(monkeypatch, tiny_prepared, tmp_path / "resumed", scores, *WSD, "eval.patience=1",
                          "checkpoint.every_steps=2", "train.stop_at_step=6")
    first.run()
    assert first.progress.step == 6 and summary(tmp_path / "resumed")["stop_reason"] == "paused"
    resumed = scripted_loop(monkeypatch, tiny_prepared, tmp_path / "resumed", scores, *WSD, "eval.patience=1",
                            "checkpoint.every_steps=2", resume="latest")
    assert resumed.progress.stage_end == 8 and resumed.end_step() == 8
    assert resumed.scheduler.lr_lambdas[0].keywords["end"].step == 8  # the schedule decays to the restored end
    resumed.run()
    assert resumed.progress.step == 8 and summary(tmp_path / "resumed")["stop_reason"] == "plateau"
    assert {**first.log.lrs, **resumed.log.lrs} == straight.log.lrs
    for a, b in zip(straight.unwrapped.trainable_parameters(), resumed.unwrapped.trainable_parameters()):
        assert torch.equal(a, b)


def test_defaults_keep_an_existing_config_unchanged(tiny_prepared, tmp_path, monkeypatch):
    config = load_config(None, ["data.root=x", "train.max_steps=1000"])  # sets none of the new keys
    assert (config.train.max_minutes, config.eval.patience, config.eval.min_gain) == (0.0, 0, 0.0)
    ending = EndOfRun(config, RunEnd(), first_step=0, started=0.0, clock=lambda: 1e9)
    progress = Progress()
    for step, cider in [(250, 0.5), (500, 0.4), (750, 0.3)]:
        progress.step = step
        assert ending.after_validation(progress, cider, elapsed=1e9) is None
        progress.best_cider = progress.best_cider or cider
    assert progress.stage_end is None and ending.step(progress) == 1000
    for name in ("cosine", "step", "constant"):
        schedule = load_config(None, ["data.root=x", f"schedule.name={name}"]).schedule
        for end in (RunEnd(), RunEnd(step=300)):  # only wsd reads the end
            assert [scheduled_lr_multiplier(step, 1000, schedule, end) for step in range(1001)] == \
                [lr_multiplier(step, 1000, schedule) for step in range(1001)]
    states = []
    for function, keywords in [(lr_multiplier, {}), (scheduled_lr_multiplier, {"end": RunEnd()})]:
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=config.optim.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
            function, max_steps=config.train.max_steps, config=config.schedule, **keywords))
        for _ in range(50):
            optimizer.step()
            scheduler.step()
        states.append(scheduler.state_dict())
    assert states[0] == states[1] and states[1]["lr_lambdas"] == [{}]
    loop = scripted_loop(monkeypatch, tiny_prepared, tmp_path, {2: 0.5, 4: 0.1}, "train.max_steps=4",
                         "logging.every_steps=2")
    loop.run()  # a worse second validation: no early end without eval.patience / train.max_minutes
    assert [loop.log.lrs[step] for step in (2, 4)] == [expected_lr(loop.config, None, step) for step in (1, 3)]
    assert summary(tmp_path)["stop_reason"] == "max_steps" and summary(tmp_path)["stage_end"] is None
    assert verify_checkpoint(step_checkpoint_dir(tmp_path, 4))["scheduler"]["lr_lambdas"] == [{}]


def test_a_decided_end_never_passes_max_steps_and_is_decided_once():
    config = load_config(None, ["data.root=x", "train.max_steps=20", "eval.every_steps=2", "eval.patience=1"])
    ending = EndOfRun(config, RunEnd(), first_step=0, started=0.0)
    assert ending.step(Progress(stage_end=50)) == 20  # resumed with a smaller train.max_steps
    progress = Progress(step=16, best_cider=0.5)
    assert ending.after_validation(progress, 0.4, elapsed=1.0) == \
        "val CIDEr-D has not improved for 1 evaluation: ending at step 16"
    progress.step = 18
    assert ending.after_validation(progress, 0.3, elapsed=2.0) is None  # decided already: only counted
    assert (progress.stage_end, ending.run_end.step, progress.evals_without_gain) == (16, 16, 2)


def plateau_after(config, scores: list[float], elapsed=lambda step: 0.0) -> tuple[list, Progress]:
    """What ``after_validation`` returns at each of ``scores`` (validated every eval.every_steps from there)."""
    ending, progress, lines = EndOfRun(config, RunEnd(), first_step=0, started=0.0), Progress(), []
    for index, cider in enumerate(scores, start=1):
        progress.step = index * config.eval.every_steps
        lines.append(ending.after_validation(progress, cider, elapsed=elapsed(progress.step)))
        progress.best_cider = max(progress.best_cider or 0.0, cider)
    return lines, progress


def test_a_plateau_with_most_of_the_budget_left_does_not_end_the_stage_until_it_lasts_twice_patience():
    """The round-3 case: one high reading at the peak learning rate, then lower ones with most steps left."""
    config = load_config(None, ["data.root=x", "train.max_steps=3000", "eval.every_steps=250", "eval.patience=2",
                                "eval.min_gain=0.01"])
    lines, progress = plateau_after(config, [1.59, 2.04, 2.35, 2.10, 1.94, 2.30, 2.33])
    assert lines[:4] == [None] * 4 and progress.stop_reason == "plateau" and progress.stage_end == 1750
    assert lines[4] == ("val CIDEr-D has not gained 1% for 2 evaluations, with 58% of the budget left: training goes "
                        "on until a plateau in the last 25% or 4 evaluations without a gain")
    assert lines[5].startswith("val CIDEr-D has not gained 1% for 3 evaluations, with 50% of the budget left")
    assert lines[6] == "val CIDEr-D has not gained 1% for 4 evaluations: ending at step 1750"
    _, rising = plateau_after(config, [1.59, 2.04, 2.35, 2.10, 1.94, 2.40, 2.10, 2.00, 2.50])
    assert rising.stage_end is None and rising.evals_without_gain == 0  # a gain resets the count


def test_an_early_wsd_plateau_starts_the_decay_and_a_plateau_after_it_ends_the_stage():
    config = load_config(None, ["data.root=x", "train.max_steps=3000", "eval.every_steps=250", "eval.patience=2",
                                "eval.min_gain=0.01", "schedule.name=wsd", "schedule.decay_steps=250"])
    lines, progress = plateau_after(config, [1.59, 2.04, 2.35, 2.10, 1.94, 2.29, 2.45, 2.40, 2.41])
    assert lines[4] == ("val CIDEr-D has not gained 1% for 2 evaluations, with 58% of the budget left: the lr decays "
                        "over steps 1250-1500, then training goes on at the lowest lr until it gains no more (2 "
                        "evaluations), the last 25% of the budget, or the budget ends it")
    assert lines[5:8] == [None] * 3 and progress.decay_end == 1500  # 2.29: one without a gain; 2.45: a gain
    assert lines[8] == "val CIDEr-D has not gained 1% for 2 evaluations: ending at step 2250"
    assert (progress.stage_end, progress.stop_reason) == (2250, "plateau")


@pytest.mark.parametrize("minutes_per_step, ends_at", [(0.001, None), (0.004, 1250)])
def test_in_the_last_quarter_of_the_time_budget_patience_ends_the_stage(minutes_per_step, ends_at):
    config = load_config(None, ["data.root=x", "train.max_steps=3000", "eval.every_steps=250", "eval.patience=2",
                                "train.max_minutes=6.5"])
    _, progress = plateau_after(config, [1.0, 2.0, 2.0, 1.9, 1.8], elapsed=lambda step: 60 * minutes_per_step * step)
    assert progress.stage_end == ends_at  # 5 of 6.5 minutes at step 1250: 23% left
