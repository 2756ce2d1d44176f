"""The ``scst:`` config section: how self-critical training samples, rewards and weighs captions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modeling.config import setting
from trainer.config.fields import AT_LEAST_0, AT_LEAST_1, POSITIVE


@dataclass
class ScstConfig:
    """Used when ``train.objective: scst``. Rewards are CIDEr-D with the training split's document frequencies."""

    samples: int = setting(5, "captions sampled per image", AT_LEAST_1)
    temperature: float = setting(1.0, "of the sampling softmax", POSITIVE)
    max_len: int = setting(16, "words per sampled caption (a caption without <eos> by then is cut there)", AT_LEAST_1)
    baseline: Literal["mean_others", "greedy"] = setting("mean_others", "what a sample's reward is compared with: the "
                                                         "other samples' mean reward, or the greedy caption's")
    entropy_weight: float = setting(0.0, "bonus for the sampling distribution's entropy per step", AT_LEAST_0)
