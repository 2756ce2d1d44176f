"""CaptionerConfig: the JSON-serialisable description of a Captioner."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

AttentionGate = Literal["scalar", "vector", "none"]
ScheduledSampling = Literal["sample", "argmax"]
FeatureNorm = Literal["batch", "layer"]
ATTENTION_GATES = get_args(AttentionGate)
SCHEDULED_SAMPLING_MODES = get_args(ScheduledSampling)
FEATURE_NORMS = get_args(FeatureNorm)
# Fields set from the dataset's vocabulary, not by the user (the trainer's model section leaves them out).
VOCABULARY_FIELDS = ("vocab_size", "pad_id", "bos_id", "eos_id")
# Upper bounds, so a config from elsewhere (a checkpoint's config.json) cannot ask for terabytes before any check:
# far above any Show-Attend-Tell model (hidden 512, vocabularies of ~10k words), far below an allocation failure.
MAX_SIZES = {"vocab_size": 1 << 20, "backbone_channels": 1 << 13, "feature_dim": 1 << 13, "grid_size": 64,
             "embed_dim": 1 << 13, "attention_dim": 1 << 13, "hidden_dim": 1 << 13}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class CaptionerConfig:
    """Sizes and special token ids of the model; defaults follow Show, Attend and Tell with a ResNet-50."""

    vocab_size: int
    encoder_weights: str = "imagenet"  # "imagenet" | "none" | path to .safetensors / .pth
    backbone_channels: int = 2048
    feature_dim: int = 256
    grid_size: int = 7
    embed_dim: int = 256
    attention_dim: int = 256
    hidden_dim: int = 512
    dropout: float = 0.5
    attention_gate: AttentionGate = "scalar"
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    scheduled_sampling: ScheduledSampling = "sample"
    feature_norm: FeatureNorm = "batch"  # backbone channels standardised by "batch": BatchNorm | "layer": LayerNorm

    def __post_init__(self) -> None:
        for name, largest in MAX_SIZES.items():
            value = getattr(self, name)
            if not _is_int(value) or not 0 < value <= largest:
                raise ValueError(f"CaptionerConfig.{name} must be an int in [1, {largest}], got {value!r}")
        for name in ("pad_id", "bos_id", "eos_id"):
            value = getattr(self, name)
            if not _is_int(value) or not 0 <= value < self.vocab_size:
                raise ValueError(f"CaptionerConfig.{name} must be an int in [0, vocab_size={self.vocab_size}), "
                                 f"got {value!r}")
        if not (isinstance(self.dropout, (int, float)) and not isinstance(self.dropout, bool)
                and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"CaptionerConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.attention_gate not in ATTENTION_GATES:
            raise ValueError(f"CaptionerConfig.attention_gate must be one of {ATTENTION_GATES}, "
                             f"got {self.attention_gate!r}")
        if self.scheduled_sampling not in SCHEDULED_SAMPLING_MODES:
            raise ValueError(f"CaptionerConfig.scheduled_sampling must be one of {SCHEDULED_SAMPLING_MODES}, "
                             f"got {self.scheduled_sampling!r}")
        if self.feature_norm not in FEATURE_NORMS:
            raise ValueError(f"CaptionerConfig.feature_norm must be one of {FEATURE_NORMS}, got {self.feature_norm!r}")
        if not isinstance(self.encoder_weights, str) or not self.encoder_weights:
            raise ValueError("CaptionerConfig.encoder_weights must be 'imagenet', 'none' or a path to a "
                             f".safetensors/.pth file, got {self.encoder_weights!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "CaptionerConfig":
        """Build from a dict; an unknown key is an error that lists the valid ones."""
        valid = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(f"unknown CaptionerConfig keys {unknown}; valid keys are {valid}")
        if "vocab_size" not in values:
            raise ValueError("CaptionerConfig.vocab_size is missing (an int in [1, "
                             f"{MAX_SIZES['vocab_size']}] expected)")
        return cls(**values)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "CaptionerConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist (expected a CaptionerConfig JSON)")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object of CaptionerConfig fields, got {type(values).__name__}")
        try:
            return cls.from_dict(values)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
