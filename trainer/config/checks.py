"""Range checks for every numeric config field, run at load: a wrong value stops the run before step 1 with the
key, the value and the allowed range (types are checked earlier, by ``trainer.config.schema``)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from modeling.config import CaptionerConfig
from modeling.decoding_options import DecodingOptions


@dataclass(frozen=True)
class Range:
    """``low <= value <= high``, with ``open_low`` / ``open_high`` making that bound strict; None: unbounded."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def __str__(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{self.low:g} {'<' if self.open_low else '<='} ")
        parts.append("value")
        if self.high is not None:
            parts.append(f" {'<' if self.open_high else '<='} {self.high:g}")
        return "".join(parts)


AT_LEAST_0, AT_LEAST_1, POSITIVE = Range(0), Range(1), Range(0, open_low=True)
PROBABILITY, FRACTION_BELOW_1 = Range(0, 1), Range(0, 1, open_high=True)

RANGES: dict[str, Range] = {
    "seed": AT_LEAST_0,
    "data.image_size": Range(32),  # ResNet-50 downsamples 32x: smaller images have no feature map
    "data.captions_per_image": AT_LEAST_1,
    "data.max_caption_len": AT_LEAST_1,
    "data.num_workers": AT_LEAST_0,
    "data.shuffle_buffer": AT_LEAST_1,
    "train.global_batch_size": AT_LEAST_1,
    "train.micro_batch_size": AT_LEAST_0,  # 0: no cap
    "train.max_steps": AT_LEAST_1,
    "train.max_grad_norm": AT_LEAST_0,
    "train.stop_at_step": AT_LEAST_0,
    "optim.lr": POSITIVE,
    "optim.weight_decay": AT_LEAST_0,
    "optim.beta1": FRACTION_BELOW_1,
    "optim.beta2": FRACTION_BELOW_1,
    "optim.eps": POSITIVE,
    "schedule.warmup_steps": AT_LEAST_0,
    "schedule.min_lr_ratio": PROBABILITY,
    "schedule.step_size": AT_LEAST_1,
    "schedule.gamma": Range(0, 1, open_low=True),  # a decay: each step_size steps multiply the lr by gamma
    "teacher_forcing.start": PROBABILITY,
    "teacher_forcing.floor": PROBABILITY,
    "teacher_forcing.k": POSITIVE,
    "teacher_forcing.decay": AT_LEAST_0,
    "loss.attention_lambda": AT_LEAST_0,
    "loss.label_smoothing": FRACTION_BELOW_1,
    "eval.every_steps": AT_LEAST_0,
    "eval.beam_size": AT_LEAST_1,
    "eval.max_len": AT_LEAST_1,
    "eval.batch_size": AT_LEAST_1,
    "eval.num_samples": AT_LEAST_0,
    "checkpoint.every_steps": AT_LEAST_0,
    "checkpoint.keep_last": AT_LEAST_1,
    "logging.every_steps": AT_LEAST_1,
    "scst.samples": AT_LEAST_1,
    "scst.temperature": POSITIVE,
    "scst.max_len": AT_LEAST_1,
    "scst.entropy_weight": AT_LEAST_0,
    "distributed.timeout_s": POSITIVE,
}


def lookup(config: Any, key: str) -> Any:
    node = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _numeric_keys(node: Any, prefix: str = "") -> list[str]:
    keys = []
    for spec in dataclasses.fields(node):
        value = getattr(node, spec.name)
        if dataclasses.is_dataclass(value):
            keys += _numeric_keys(value, f"{prefix}{spec.name}.")
        elif isinstance(value, float):
            keys.append(prefix + spec.name)
    return keys


def check_config(config: Any) -> None:
    """ValueError naming the first key whose value is out of range, not finite, or inconsistent with another."""
    for key in _numeric_keys(config):
        if not math.isfinite(lookup(config, key)):
            raise ValueError(f"config key {key!r} = {lookup(config, key)!r} must be a finite number")
    for key, allowed in RANGES.items():
        value = lookup(config, key)
        if value is not None and not allowed.holds(value):
            raise ValueError(f"config key {key!r} = {value!r} is out of range: expected {allowed}")
    forcing = config.teacher_forcing
    if forcing.floor > forcing.start:
        raise ValueError(f"config key 'teacher_forcing.floor' = {forcing.floor!r} is above teacher_forcing.start = "
                         f"{forcing.start!r}: the floor would always win; expected floor <= start")
    if forcing.schedule == "exponential" and forcing.k >= 1:
        raise ValueError(f"config key 'teacher_forcing.k' = {forcing.k!r}: the exponential schedule start * k**step "
                         f"decays only for 0 < k < 1")
    if forcing.schedule == "inverse_sigmoid" and forcing.k < 1:
        raise ValueError(f"config key 'teacher_forcing.k' = {forcing.k!r}: the inverse_sigmoid schedule "
                         f"k / (k + exp(step / k)) needs k >= 1")
    if config.scst.baseline == "mean_others" and config.scst.samples < 2:
        raise ValueError(f"config key 'scst.samples' = {config.scst.samples!r}: baseline mean_others needs at least 2 "
                         "samples per image (or scst.baseline=greedy)")
    try:  # the model section's own checks (sizes, dropout), with a placeholder vocabulary
        CaptionerConfig(vocab_size=8, **dataclasses.asdict(config.model))
    except ValueError as error:
        raise ValueError(f"config section 'model': {error}") from None
    evaluation = config.eval
    try:  # decoding values contradicting each other (top_k without sample, min_len above max_len) fail at load
        DecodingOptions(beam_size=evaluation.beam_size, max_len=evaluation.max_len,
                        length_penalty=evaluation.length_penalty, min_len=evaluation.min_len,
                        no_repeat_ngram_size=evaluation.no_repeat_ngram_size, sample=evaluation.sample,
                        temperature=evaluation.temperature, top_k=evaluation.top_k, top_p=evaluation.top_p)
    except (TypeError, ValueError) as error:
        raise ValueError(f"config section 'eval': {error}") from None
    if not config.data.root:
        raise ValueError("config key 'data.root' is required: a directory written by data_pipelines.prepare")
