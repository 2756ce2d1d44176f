"""Pure per-optimizer-step schedules: learning-rate multiplier and teacher-forcing ratio, each a registry of named
functions (``LR_SCHEDULES``, ``TEACHER_FORCING_SCHEDULES``) from which ``schedule.name`` and
``teacher_forcing.schedule`` take their allowed values (``trainer.config.sections``).

``step`` is the 0-based index of the optimizer step about to be taken, so a resumed run at step ``s`` continues both
schedules exactly where the interrupted one stopped. The config sections are passed in, not imported: the sections
read their choices from here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from data_pipelines.registry import Registry

# name -> multiplier(i, max_steps, end, config) after warmup: i = step - schedule.warmup_steps, max_steps =
# train.max_steps, end = the step the run ends at (train.max_steps until a validation decides an earlier one)
LR_SCHEDULES: Registry = Registry("LR schedule")
# name -> ratio(step, config) before teacher_forcing.floor is applied
TEACHER_FORCING_SCHEDULES: Registry = Registry("teacher-forcing schedule")


@dataclass
class RunEnd:
    """The step a run ends at once a validation has decided it (None: ``train.max_steps``). The loop sets it; the
    run's LambdaLR reads it through ``scheduled_lr_multiplier`` (only wsd depends on it)."""

    step: int | None = None


def cosine_decay(i: int, n: int, min_lr_ratio: float) -> float:
    """``min + (1 - min) * (1 + cos(pi * min(i, n) / n)) / 2``: 1 at ``i = 0``, ``min`` from ``i = n`` on."""
    progress = min(i, n) / n
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


@LR_SCHEDULES.register("cosine")
def cosine(i: int, max_steps: int, end: int, config) -> float:
    """The cosine from 1 to ``schedule.min_lr_ratio`` over the steps after warmup."""
    return cosine_decay(i, max(1, max_steps - config.warmup_steps), config.min_lr_ratio)


@LR_SCHEDULES.register("step")
def step_decay(i: int, max_steps: int, end: int, config) -> float:
    """``gamma ** (i // step_size)``."""
    return config.gamma ** (i // config.step_size)


@LR_SCHEDULES.register("constant")
def constant(i: int, max_steps: int, end: int, config) -> float:
    return 1.0


@LR_SCHEDULES.register("wsd")
def warmup_stable_decay(i: int, max_steps: int, end: int, config) -> float:
    """1 until ``end - decay_steps``, then the cosine over ``decay_steps`` reaching ``min_lr_ratio`` at ``end`` (a run
    too short for warmup and decay decays over the steps after warmup)."""
    n = max(1, min(config.decay_steps, end - config.warmup_steps))
    into_decay = i + config.warmup_steps - (end - n)
    return 1.0 if into_decay < 0 else cosine_decay(into_decay, n, config.min_lr_ratio)


def lr_multiplier(step: int, max_steps: int, config, end: int | None = None) -> float:
    """Factor applied to ``optim.lr`` at ``step`` for the ``schedule`` section ``config``; ``end``: the step the run
    ends at (None: ``max_steps``; only wsd reads it).

    Warmup: ``(step + 1) / warmup_steps`` for ``step < warmup_steps`` (reaches 1 on the last warmup step); after it
    the schedule ``config.name`` of ``LR_SCHEDULES`` at ``i = step - warmup_steps``.
    """
    schedule = LR_SCHEDULES.lookup(config.name, "config key 'schedule.name'")
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    return schedule(step - config.warmup_steps, max_steps, max_steps if end is None else end, config)


def scheduled_lr_multiplier(step: int, max_steps: int, config, end: RunEnd) -> float:
    """``lr_multiplier`` towards the run's end as decided so far: a run's LambdaLR calls a partial of this (the
    partial keeps ``end`` out of its ``__dict__``, so the scheduler's state_dict is the same as without it)."""
    return lr_multiplier(step, max_steps, config, end.step)


@TEACHER_FORCING_SCHEDULES.register("constant")
def constant_forcing(step: int, config) -> float:
    return config.start


@TEACHER_FORCING_SCHEDULES.register("linear")
def linear_forcing(step: int, config) -> float:
    return config.start - config.decay * step


@TEACHER_FORCING_SCHEDULES.register("exponential")
def exponential_forcing(step: int, config) -> float:
    """``start * k**step`` (k < 1)."""
    return config.start * config.k ** step


@TEACHER_FORCING_SCHEDULES.register("inverse_sigmoid")
def inverse_sigmoid_forcing(step: int, config) -> float:
    """``start * k / (k + exp(step / k))`` (k >= 1)."""
    exponent = step / config.k
    return 0.0 if exponent > 700 else config.start * config.k / (config.k + math.exp(exponent))


def teacher_forcing_ratio(step: int, config) -> float:
    """Probability of feeding the ground-truth previous word at ``step`` for the ``teacher_forcing`` section
    ``config`` (Bengio et al. 2015): its schedule of ``TEACHER_FORCING_SCHEDULES``, never below ``floor``."""
    schedule = TEACHER_FORCING_SCHEDULES.lookup(config.schedule, "config key 'teacher_forcing.schedule'")
    return max(config.floor, schedule(step, config))
