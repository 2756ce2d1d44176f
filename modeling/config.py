"""CaptionerConfig: the JSON-serialisable description of a Captioner.

Every field is declared once with ``setting``: its default, its doc and, for a number, its ``Range``. The checks in
``CaptionerConfig.__post_init__`` and the trainer's ``model:`` section (its range checks and ``--help``) read them.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import typing
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

AttentionGate = Literal["scalar", "vector", "none"]
ScheduledSampling = Literal["sample", "argmax"]
FeatureNorm = Literal["batch", "layer"]
FEATURE_NORMS = get_args(FeatureNorm)
# The ResNet-50 stage from which the encoder trains (with every later stage); "none": the whole backbone is frozen.
FinetuneFrom = Literal["none", "layer1", "layer2", "layer3", "layer4"]
BACKBONE_STAGES = get_args(FinetuneFrom)[1:]
# Fields set from the dataset's vocabulary, not by the user (the trainer's model section leaves them out).
VOCABULARY_FIELDS = ("vocab_size", "pad_id", "bos_id", "eos_id")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


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
        """``0 < value <= 1``"""
        low = "" if self.low is None else f"{_number(self.low)} {'<' if self.open_low else '<='} "
        high = "" if self.high is None else f" {'<' if self.open_high else '<='} {_number(self.high)}"
        return f"{low}value{high}"

    def requirement(self) -> str:
        """``>= 1``, ``> 0``, ``in (0, 1]``: what a value must be, as an error message says it."""
        if self.high is None and self.low is not None:
            return f"{'>' if self.open_low else '>='} {_number(self.low)}"
        if self.low is None and self.high is not None:
            return f"{'<' if self.open_high else '<='} {_number(self.high)}"
        return f"in {self.interval()}"

    def interval(self) -> str:
        """``(0, 1]``"""
        low = "(-inf" if self.low is None else f"{'(' if self.open_low else '['}{_number(self.low)}"
        high = "inf)" if self.high is None else f"{_number(self.high)}{')' if self.open_high else ']'}"
        return f"{low}, {high}"


def setting(default: Any, doc: str, bounds: Range | None = None) -> Any:
    """A config field declared once: its default (MISSING: required; a list is copied for each instance), its doc and,
    for a number, the Range it must lie in (read back with ``doc_of`` / ``bounds_of``)."""
    metadata = {"doc": doc, "bounds": bounds}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def doc_of(spec: dataclasses.Field) -> str:
    return spec.metadata.get("doc", "")


def bounds_of(spec: dataclasses.Field) -> Range | None:
    return spec.metadata.get("bounds")


# Upper bounds, so a config from elsewhere (a checkpoint's config.json) cannot ask for terabytes before any check:
# far above any Show-Attend-Tell model (hidden 512, vocabularies of ~10k words), far below an allocation failure.
SIZE = Range(1, 1 << 13)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class CaptionerConfig:
    """Sizes and special token ids of the model; defaults follow Show, Attend and Tell with a ResNet-50."""

    vocab_size: int = setting(MISSING, "words in the vocabulary, special tokens included", Range(1, 1 << 20))
    encoder_weights: str = setting("imagenet", "the ResNet-50's weights: 'imagenet' (torchvision's), 'none' (random) "
                                   "or the path of a .safetensors / .pth state dict; frozen unless finetune_from")
    backbone_channels: int = setting(2048, "channels of the backbone's last feature map (ResNet-50: 2048)", SIZE)
    feature_dim: int = setting(256, "size of a region's feature: the 1x1 projection of the backbone channels", SIZE)
    grid_size: int = setting(7, "the feature map is average-pooled to grid_size x grid_size regions", Range(1, 64))
    embed_dim: int = setting(256, "size of a word embedding", SIZE)
    attention_dim: int = setting(256, "hidden size of the additive attention", SIZE)
    hidden_dim: int = setting(512, "size of the LSTM's hidden and cell state", SIZE)
    dropout: float = setting(0.5, "dropout on the LSTM output before the word logits", Range(0, 1, open_high=True))
    attention_gate: AttentionGate = setting("scalar", "the gate sigmoid(W h) on the attention context: one scalar per "
                                            "step (the paper's), one per feature channel (vector), or none")
    pad_id: int = setting(0, "id of <pad>")
    bos_id: int = setting(1, "id of <bos>, the first input word")
    eos_id: int = setting(2, "id of <eos>, which ends a caption")
    scheduled_sampling: ScheduledSampling = setting("sample", "the word fed instead of the ground truth when teacher "
                                                    "forcing skips a step: sampled from the softmax, or its argmax")
    feature_norm: FeatureNorm = setting("batch", "how the backbone channels are standardised: BatchNorm over the "
                                        "batch, or LayerNorm of each region's vector")
    finetune_from: FinetuneFrom = setting("none", "the ResNet-50 stage from which the backbone trains, with every later "
                                          "stage (optim.encoder_lr_factor; BatchNorm statistics stay frozen); none: "
                                          "the whole backbone is frozen")

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            problem = _field_problem(_hints()[spec.name], bounds_of(spec), getattr(self, spec.name))
            if problem:
                raise ValueError(f"CaptionerConfig.{spec.name} {problem}")
        for name in ("pad_id", "bos_id", "eos_id"):
            value = getattr(self, name)
            if not _is_int(value) or not 0 <= value < self.vocab_size:
                raise ValueError(f"CaptionerConfig.{name} must be an int in [0, vocab_size={self.vocab_size}), "
                                 f"got {value!r}")
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
            vocab_size = next(spec for spec in dataclasses.fields(cls) if spec.name == "vocab_size")
            raise ValueError(f"CaptionerConfig.vocab_size is missing (an int in {bounds_of(vocab_size).interval()} "
                             "expected)")
        return cls(**values)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "CaptionerConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist (expected a CaptionerConfig JSON)")
        values = read_json_object(path, "CaptionerConfig fields")
        try:
            return cls.from_dict(values)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def read_json_object(path: Path, holds: str) -> dict:
    """The JSON object stored in the file ``path``; ValueError naming the file when it is not UTF-8 JSON or not an
    object (``holds``: what the object should hold). A checkpoint's ``config.json`` and ``trainer_state.json`` are both
    read with it, so a broken one fails with the same message."""
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object of {holds}, got {type(values).__name__}")
    return values


@functools.cache
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(CaptionerConfig)


def _field_problem(annotation: Any, bounds: Range | None, value: Any) -> str | None:
    """What is wrong with ``value`` for a field of this type and Range ("must be ..., got ..."); None when valid."""
    if typing.get_origin(annotation) is Literal and value not in get_args(annotation):
        return f"must be one of {get_args(annotation)}, got {value!r}"
    if bounds is None:
        return None
    if annotation is int and not (_is_int(value) and bounds.holds(value)):
        return f"must be an int in {bounds.interval()}, got {value!r}"
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is float and not (is_number and bounds.holds(value)):
        return f"must be in {bounds.interval()}, got {value!r}"
    return None
