"""Pure per-optimizer-step schedules: learning-rate multiplier and teacher-forcing ratio.

``step`` is the 0-based index of the optimizer step about to be taken, so a resumed run at step ``s`` continues both
schedules exactly where the interrupted one stopped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from trainer.config.sections import ScheduleConfig, TeacherForcingConfig


@dataclass
class RunEnd:
    """The step a run ends at once a validation has decided it (None: ``train.max_steps``). The loop sets it; the
    run's LambdaLR reads it through ``scheduled_lr_multiplier`` (only wsd depends on it)."""

    step: int | None = None


def lr_multiplier(step: int, max_steps: int, config: ScheduleConfig, end: int | None = None) -> float:
    """Factor applied to ``optim.lr`` at ``step``; ``end``: the step the run ends at (None: ``max_steps``).

    Warmup: ``(step + 1) / warmup_steps`` for ``step < warmup_steps`` (reaches 1 on the last warmup step). After it,
    with ``i = step - warmup_steps`` and ``n = max(1, max_steps - warmup_steps)``:
    cosine ``min + (1 - min) * (1 + cos(pi * min(i, n) / n)) / 2``; step ``gamma ** (i // step_size)``; constant 1;
    wsd 1 until ``end - decay_steps``, then the cosine over ``decay_steps`` (reaching ``min`` at ``end``; a run too short
    for warmup and decay decays over the steps after warmup). Only wsd
    reads ``end``.
    """
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    i = step - config.warmup_steps
    if config.name == "constant":
        return 1.0
    if config.name == "step":
        return config.gamma ** (i // config.step_size)
    if config.name == "wsd":
        end = max_steps if end is None else end
        n = max(1, min(config.decay_steps, end - config.warmup_steps))  # a short run decays over what follows warmup
        i = step - (end - n)
        if i < 0:
            return 1.0
    else:
        n = max(1, max_steps - config.warmup_steps)
    progress = min(i, n) / n
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def scheduled_lr_multiplier(step: int, max_steps: int, config: ScheduleConfig, end: RunEnd) -> float:
    """``lr_multiplier`` towards the run's end as decided so far: a run's LambdaLR calls a partial of this (the
    partial keeps ``end`` out of its ``__dict__``, so the scheduler's state_dict is the same as without it)."""
    return lr_multiplier(step, max_steps, config, end.step)


def teacher_forcing_ratio(step: int, config: TeacherForcingConfig) -> float:
    """Probability of feeding the ground-truth previous word at ``step`` (Bengio et al. 2015, never below ``floor``).

    constant ``start``; linear ``start - decay * i``; exponential ``start * k**i`` (k < 1);
    inverse_sigmoid ``start * k / (k + exp(i / k))`` (k >= 1); each then ``max(floor, .)``.
    """
    i = step
    if config.schedule == "constant":
        ratio = config.start
    elif config.schedule == "linear":
        ratio = config.start - config.decay * i
    elif config.schedule == "exponential":
        ratio = config.start * config.k ** i
    else:
        exponent = i / config.k
        ratio = 0.0 if exponent > 700 else config.start * config.k / (config.k + math.exp(exponent))
    return max(config.floor, ratio)
