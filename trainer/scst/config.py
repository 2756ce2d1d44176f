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

    def __post_init__(self) -> None:
        checks = {"scst.samples": self.samples >= (2 if self.baseline == "mean_others" else 1),
                  "scst.temperature": self.temperature > 0, "scst.max_len": self.max_len >= 1,
                  "scst.entropy_weight": self.entropy_weight >= 0}
        bad = [key for key, ok in checks.items() if not ok]
        if bad:
            value = getattr(self, bad[0].split(".")[1])
            need = " (baseline mean_others needs at least 2 samples)" if bad[0] == "scst.samples" else ""
            raise ValueError(f"config key {bad[0]!r} is out of range: {value!r}{need}")
