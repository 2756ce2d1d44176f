"""The ``scst:`` config section: how self-critical training samples, rewards and weighs captions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class ScstConfig:
    """Used when ``train.objective: scst``. Rewards are CIDEr-D with the training split's document frequencies."""

    samples: int = 5  # captions sampled per image
    temperature: float = 1.0  # of the sampling softmax
    max_len: int = 16  # words per sampled caption (a caption without <eos> by then is cut there)
    baseline: Literal["mean_others", "greedy"] = "mean_others"  # the other samples' mean reward | greedy caption's
    entropy_weight: float = 0.0  # bonus for the sampling distribution's entropy per step

