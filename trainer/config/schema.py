"""Typed training configuration: ``TrainConfig`` (its sections in ``trainer.config.sections``) loaded from YAML plus
dotted ``key=value`` overrides.

``load_config("configs/demo.yaml", ["train.max_steps=200", "data.root=/x"])`` -> ``TrainConfig``. Override values are
parsed with ``yaml.safe_load`` and checked against the field's type; an unknown key or a wrong type is an error that
names the key and the valid choices.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from data_pipelines.data_sources import DataSource, named_sources
from data_pipelines.redact import redacted
from data_pipelines.safe_write import write_file
from data_pipelines.stream import TrainLoaderOptions
from modeling.config import VOCABULARY_FIELDS, CaptionerConfig, setting
from trainer.config.checks import check_config
from trainer.config.fields import SEED_RANGE, section_fields
from trainer.config.sections import (
    CheckpointConfig,
    DataConfig,
    DistributedConfig,
    EvalConfig,
    LoggingConfig,
    LossConfig,
    OptimConfig,
    ScheduleConfig,
    TeacherForcingConfig,
    TrainSection,
)
from trainer.config.yaml_file import load_yaml_file
from trainer.scst.config import ScstConfig

# Model fields fixed by the ResNet-50 backbone rather than chosen per experiment.
BACKBONE_FIELDS = ("backbone_channels",)


def _model_section() -> type:
    """The Captioner: modeling.CaptionerConfig's fields except those the vocabulary and the backbone fix (that
    dataclass declares them: types, defaults, docs and ranges)."""
    hints = typing.get_type_hints(CaptionerConfig)
    fields = [(spec.name, hints[spec.name], field(default=spec.default, metadata=spec.metadata))
              for spec in dataclasses.fields(CaptionerConfig) if spec.name not in VOCABULARY_FIELDS + BACKBONE_FIELDS]
    return dataclasses.make_dataclass("ModelConfig", fields, namespace={"__doc__": _model_section.__doc__,
                                                                        "__module__": __name__})


ModelConfig = _model_section()


def captioner_config(model: ModelConfig, vocab) -> CaptionerConfig:
    """The Captioner's full config: this run's model section plus the vocabulary's size and special ids."""
    return CaptionerConfig(vocab_size=len(vocab), pad_id=vocab.pad_id, bos_id=vocab.bos_id, eos_id=vocab.eos_id,
                           **dataclasses.asdict(model))


@dataclass
class TrainConfig:
    """A training run: the top-level keys and one field per section."""

    output_dir: str = setting("runs/default", "the run's directory: checkpoints, best/, train_log.jsonl, TensorBoard "
                              "events and the effective config.yaml")
    seed: int = setting(0, "seeds the weights, the data order and the sampling (numpy takes 32 bits)", SEED_RANGE)
    mixed_precision: Literal["no", "fp16", "bf16"] = setting("no", "autocast dtype of the forward pass (fp16 needs a "
                                                             "CUDA device)")
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainSection = field(default_factory=TrainSection)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    teacher_forcing: TeacherForcingConfig = field(default_factory=TeacherForcingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    scst: ScstConfig = field(default_factory=ScstConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_record(self) -> dict:
        """``to_dict`` as written where others read it (config.yaml, checkpoints, trackers): no secrets."""
        return redacted(self.to_dict())

    def data_sources(self) -> list[DataSource]:
        """The prepared datasets this run reads: ``data.sources`` (names filled in), else ``data.root`` alone."""
        data = self.data
        if not data.sources:
            return named_sources([DataSource(data.root, 1.0, "", data.features)], "data.root")
        return named_sources([DataSource(source.root, source.weight, source.name, source.features)
                              for source in data.sources])

    def train_loader_options(self, micro_batch_size: int) -> TrainLoaderOptions:
        """How this run's training stream reads its sources (the same for every epoch and rank); the sources
        (``data_sources``) carry their feature caches."""
        data = self.data
        return TrainLoaderOptions(batch_size=micro_batch_size, seed=self.seed, num_workers=data.num_workers,
                                  captions_per_image=data.captions_per_image, max_caption_len=data.max_caption_len,
                                  image_size=data.image_size, augment=data.augment,
                                  resampled=data.resampled, shuffle_buffer=data.shuffle_buffer)

    def save(self, path: str | Path) -> None:
        write_file(path, yaml.safe_dump(self.to_record(), sort_keys=False))

    def hash(self) -> str:
        """Short sha256 of the canonical JSON of the whole config."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _check_value(key: str, value: Any, annotation: Any) -> Any:
    """``value`` converted to ``annotation`` (int -> float allowed), or a ValueError naming the key."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        if isinstance(value, bool) and "no" in args:  # YAML 1.1 reads an unquoted no as false
            value = "no" if value is False else value
        if value not in args:
            raise ValueError(f"config key {key!r}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(annotation):  # a list item that is a small section (data.sources[i])
        return _build(annotation, value, f"{key}.")
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"config key {key!r}: expected a list, got {value!r} ({type(value).__name__})")
        return [_check_value(f"{key}[{index}]", item, args[0]) for index, item in enumerate(value)]
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _check_value(key, value, next(arg for arg in args if arg is not type(None)))
    if annotation is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:  # YAML 1.1 reads "4e-4" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if annotation is int and isinstance(value, bool) or not isinstance(value, annotation):
        raise ValueError(f"config key {key!r}: expected {annotation.__name__}, got {value!r} "
                         f"({type(value).__name__})")
    return value


def _build(cls, values: dict, prefix: str = ""):
    """Instance of dataclass ``cls`` from a (possibly partial) nested dict, checking every key and type."""
    if not isinstance(values, dict):
        raise ValueError(f"config section {prefix.rstrip('.') or '<top>'!r} must be a mapping, got {values!r}")
    fields = section_fields(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown config key {prefix + unknown[0]!r}; valid keys here: "
                         f"{[prefix + name for name in fields]}")
    kwargs = {}
    for name, value in values.items():
        annotation = fields[name]
        if dataclasses.is_dataclass(annotation):
            kwargs[name] = _build(annotation, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _check_value(prefix + name, value, annotation)
    return cls(**kwargs)


def parse_overrides(overrides: list[str]) -> dict:
    """``["train.max_steps=5", "data.features=null"]`` -> nested dict; values parsed with ``yaml.safe_load``."""
    nested: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like section.key=value")
        *sections, leaf = key.split(".")
        node = nested
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {section!r} is not a section")
        try:
            node[leaf] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as error:  # e.g. a control character: one line naming the override
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ValueError(f"override {item!r}: the value is not a plain YAML value ({problem})") from None
    return nested


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if nested else value
    return merged


def config_from_dict(values: dict) -> TrainConfig:
    return _build(TrainConfig, values)


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Config from a YAML file (defaults when None) with dotted ``key=value`` overrides applied on top."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        values = load_yaml_file(path) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a YAML mapping of config sections, got {type(values).__name__}")
    config = config_from_dict(_merge(values, parse_overrides(list(overrides))))
    check_config(config)
    return config


def flatten_scalars(values: dict, prefix: str = "") -> dict[str, int | float | str | bool]:
    """Nested dict -> ``{"train.max_steps": 1000, ...}``, None as "none" (init_trackers takes scalars only)."""
    flat: dict = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten_scalars(value, f"{prefix}{key}."))
        elif isinstance(value, (list, tuple)):
            flat[prefix + key] = json.dumps(value)
        else:
            flat[prefix + key] = "none" if value is None else value
    return flat
