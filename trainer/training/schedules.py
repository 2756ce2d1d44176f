"""Pure per-optimizer-step schedules: learning-rate multiplier and teacher-forcing ratio.

``step`` is the 0-based index of the optimizer step about to be taken, so a resumed run at step ``s`` continues both
schedules exactly where the interrupted one stopped.
"""
from __future__ import annotations

import math

from trainer.config.sections import ScheduleConfig, TeacherForcingConfig


def lr_multiplier(step: int, max_steps: int, config: ScheduleConfig) -> float:
    """Factor applied to ``optim.lr`` at ``step``.

    Warmup: ``(step + 1) / warmup_steps`` for ``step < warmup_steps`` (reaches 1 on the last warmup step). After it,
    with ``i = step - warmup_steps`` and ``n = max(1, max_steps - warmup_steps)``:
    cosine ``min + (1 - min) * (1 + cos(pi * min(i, n) / n)) / 2``; step ``gamma ** (i // step_size)``; constant 1.
    """
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    i = step - config.warmup_steps
    if config.name == "constant":
        return 1.0
    if config.name == "step":
        return config.gamma ** (i // config.step_size)
    n = max(1, max_steps - config.warmup_steps)
    progress = min(i, n) / n
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


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
