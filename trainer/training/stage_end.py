"""When a run (one stage: cross-entropy or SCST) ends: at ``train.max_steps``, or earlier once a validation decides it.

After every validation each rank calls ``EndOfRun.after_validation`` with what the main process measured (CIDEr-D and
the invocation's elapsed seconds, broadcast by the loop), so every rank decides the same. It counts the validations in
a row without a gain of ``eval.min_gain`` over the best CIDEr-D so far (a plateau: ``eval.patience`` of them) and
decides:

- "plateau" once at most a quarter of the stage's budget is left (``PLATEAU_SHARE``), or earlier when validation says
  the stage has converged: for ``schedule.name: wsd`` a plateau after an earlier one started the decay (validations
  at the lowest learning rate brought no gain), for other schedules twice ``eval.patience`` validations without a
  gain. With more budget left, a wsd plateau starts the decay (the lr falls over ``schedule.decay_steps`` and stays at
  its floor) and training goes on: on a val split of a few hundred images one high reading at the peak learning rate
  makes the next few look like a plateau, and on a small training set the peak rate overfits where the lowest does
  not.
- "budget": the main process estimates that ``train.max_minutes`` would run out before the next validation could
  decide it.

The budget left is the smaller of the steps left to ``train.max_steps`` and the time left of ``train.max_minutes``,
each as a share of the whole. The end is the step just validated, or for wsd that step + ``schedule.decay_steps``
unless the decay already started (``trainer.training.schedules``). The decision lives
in ``Progress`` (``stage_end``, ``decay_end``, ``evals_without_gain``, ``stop_reason``), so ``--resume`` keeps it; with
``train.max_minutes: 0`` it depends on the validation results only. At the end the main process writes
``output_dir/run_summary.json``.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from data_pipelines.safe_write import write_file
from trainer.checkpointing.train_state import Progress
from trainer.training.schedules import RunEnd

logger = logging.getLogger("trainer.train")

SUMMARY_FILE = "run_summary.json"
PLATEAU_SHARE = 0.25  # a plateau of eval.patience validations ends a stage only within this share of its budget


def counts_as_gain(cider: float | None, best_before: float | None, min_gain: float) -> bool:
    """CIDEr-D above the best so far by the relative ``min_gain``; the first validation of a run always counts."""
    return best_before is None or (cider is not None and cider > best_before * (1 + min_gain))


def decided_end(config, step: int, decay_end: int | None = None) -> int:
    """Where a run whose end is decided at ``step`` ends: there, or for wsd after its decay (never started inside the
    warmup), or at ``decay_end`` when an earlier plateau started the decay already."""
    schedule = config.schedule
    if schedule.name != "wsd":
        return step
    if decay_end is not None:
        return max(step, decay_end)
    return max(step, schedule.warmup_steps) + schedule.decay_steps


def steps_if_not_ended(config, step: int, decay_end: int | None = None) -> int:
    """Steps still to train if the run's end is not decided at ``step``: to the next validation (wsd: and the decay
    after it, unless it started), at most to ``train.max_steps``."""
    decay = config.schedule.decay_steps if config.schedule.name == "wsd" and decay_end is None else 0
    return min(config.eval.every_steps + decay, config.train.max_steps - step)


def write_summary(output_dir: str | Path, summary: dict) -> Path:
    """``output_dir/run_summary.json``, replaced atomically."""
    path = Path(output_dir) / SUMMARY_FILE
    return write_file(path, json.dumps(summary, indent=1) + "\n")


class EndOfRun:
    """The run's end as decided so far; ``run_end`` is the holder the LR schedule reads. ``started``: when this
    invocation started (``clock`` seconds); ``first_step``: the step it started from."""

    def __init__(self, config, run_end: RunEnd, first_step: int, started: float, clock=time.perf_counter):
        self.config, self.run_end, self.first_step, self.started, self.clock = (config, run_end, first_step, started,
                                                                                clock)

    def step(self, progress: Progress) -> int:
        """``train.max_steps``, or the earlier end a validation decided."""
        max_steps = self.config.train.max_steps
        return max_steps if progress.stage_end is None else min(progress.stage_end, max_steps)

    def elapsed(self) -> float:
        """Wall seconds of this invocation so far."""
        return self.clock() - self.started

    def after_validation(self, progress: Progress, cider: float | None, elapsed: float) -> str | None:
        """Count the validation at ``progress.step`` against the best val CIDEr-D seen before it (which best/ may not
        have kept: ``eval.best_min_z``) and decide the end when it is due; returns the line to log when it was decided
        now, or when a plateau did not end the run."""
        best_before = progress.best_cider if progress.best_seen_cider is None else progress.best_seen_cider
        if counts_as_gain(cider, best_before, self.config.eval.min_gain):
            progress.evals_without_gain = 0
        else:
            progress.evals_without_gain += 1
        if cider is not None and (best_before is None or cider > best_before):
            progress.best_seen_cider = cider
        if progress.stage_end is not None:
            return None
        reason, why = self.reason_to_end(progress, elapsed)
        if reason == "decay":
            return self.start_decay(progress, why)
        if reason is None:
            return why or None
        end = decided_end(self.config, progress.step, progress.decay_end)
        if end >= self.config.train.max_steps:  # the run ends there anyway (wsd: already decaying)
            return None
        progress.stage_end, progress.stop_reason = end, reason
        if progress.decay_end is None:
            progress.decay_end = self.run_end.step = end
        schedule = self.config.schedule  # a run too short for the whole decay decays after its warmup
        start = max(end - schedule.decay_steps, schedule.warmup_steps)
        decay = f" (the lr decays over steps {start}-{end})" if end > progress.step and end == progress.decay_end else ""
        return f"{why}: ending at step {end}{decay}"

    def start_decay(self, progress: Progress, why: str) -> str | None:
        """An early wsd plateau: the lr decays from now over ``schedule.decay_steps`` and stays at its floor; the
        plateau count starts over."""
        schedule = self.config.schedule
        start = max(progress.step, schedule.warmup_steps)
        if start + schedule.decay_steps >= self.config.train.max_steps:  # it decays to max_steps anyway
            return None
        progress.decay_end = self.run_end.step = start + schedule.decay_steps
        progress.evals_without_gain = 0
        return (f"{why}: the lr decays over steps {start}-{progress.decay_end}, then training goes on at the lowest "
                f"lr until it gains no more ({self.config.eval.patience} evaluations), the last "
                f"{PLATEAU_SHARE:.0%} of the budget, or the budget ends it")

    def budget_left(self, progress: Progress, elapsed: float) -> float:
        """The share of the stage's budget still left: of the steps to ``train.max_steps``, and with
        ``train.max_minutes`` of its time, whichever is less."""
        train = self.config.train
        left = 1.0 - progress.step / train.max_steps
        if train.max_minutes:
            left = min(left, 1.0 - elapsed / (train.max_minutes * 60))
        return left

    def reason_to_end(self, progress: Progress, elapsed: float) -> tuple[str | None, str]:
        """("plateau" | "budget", why) when the run should end now, ("decay", why) when an early wsd plateau should
        start the decay, else (None, why it goes on despite a plateau, or "")."""
        evaluation, train = self.config.eval, self.config.train
        count, wsd = progress.evals_without_gain, self.config.schedule.name == "wsd"
        goes_on = ""
        if evaluation.patience and count >= evaluation.patience:
            gained = f"gained {evaluation.min_gain * 100:g}%" if evaluation.min_gain else "improved"
            plateau = f"val CIDEr-D has not {gained} for {count} evaluation{'s' * (count != 1)}"
            left = self.budget_left(progress, elapsed)
            converged = progress.decay_end is not None if wsd else count >= 2 * evaluation.patience
            if converged or left <= PLATEAU_SHARE:
                return "plateau", plateau
            if wsd:
                return "decay", f"{plateau}, with {left:.0%} of the budget left"
            goes_on = (f"{plateau}, with {left:.0%} of the budget left: training goes on until a plateau in the "
                       f"last {PLATEAU_SHARE:.0%} or {2 * evaluation.patience} evaluations without a gain")
        done = progress.step - self.first_step
        if not train.max_minutes or done <= 0:
            return None, goes_on
        seconds_per_step = elapsed / done
        steps = steps_if_not_ended(self.config, progress.step, progress.decay_end)
        if elapsed + seconds_per_step * steps <= train.max_minutes * 60:
            return None, goes_on
        return "budget", (f"the time budget train.max_minutes={train.max_minutes:g} would run out before the next "
                          f"validation ({elapsed / 60:.1f} min so far, {seconds_per_step:.2f} s per step)")

    def stop_reason(self, progress: Progress, stopped: bool, paused: bool) -> str:
        if stopped:
            return "signal"
        if paused:
            return "paused"
        if progress.stage_end is not None and progress.step >= progress.stage_end:
            return progress.stop_reason
        return "max_steps"

    def report(self, progress: Progress, stopped: bool, paused: bool) -> dict:
        """Main process, after the run's last checkpoint and validation: ``run_summary.json`` and one INFO line."""
        summary = {"objective": self.config.train.objective, "steps": progress.step,
                   "stop_reason": self.stop_reason(progress, stopped, paused), "stage_end": progress.stage_end,
                   "best_step": progress.best_step, "best_cider": progress.best_cider,
                   "wall_seconds": round(self.elapsed(), 1), "max_steps": self.config.train.max_steps}
        write_summary(self.config.output_dir, summary)
        best = "no val CIDEr-D yet" if progress.best_cider is None else \
            f"best val CIDEr-D {progress.best_cider:.4f} at step {progress.best_step}"
        logger.info("run ended at step %d (%s): %s", progress.step, summary["stop_reason"], best)
        return summary
