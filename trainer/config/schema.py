"""Typed training configuration: dataclass sections loaded from YAML plus dotted ``key=value`` overrides.

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
from typing import Any, Literal, Optional

import yaml

from data_pipelines.stream import TrainLoaderOptions
from modeling.config import VOCABULARY_FIELDS, CaptionerConfig
from trainer.config.checks import check_config
from trainer.config.yaml_file import load_yaml_file
from trainer.scst.config import ScstConfig

# Model fields fixed by the ResNet-50 backbone rather than chosen per experiment.
BACKBONE_FIELDS = ("backbone_channels",)


def _model_section() -> type:
    """The ``model:`` section: every CaptionerConfig field (same types and defaults) except those that come from
    the vocabulary or the backbone, so the model's dataclass stays the one place that declares them."""
    hints = typing.get_type_hints(CaptionerConfig)
    fields = [(spec.name, hints[spec.name], field(default=spec.default)) for spec in dataclasses.fields(CaptionerConfig)
              if spec.name not in VOCABULARY_FIELDS + BACKBONE_FIELDS]
    return dataclasses.make_dataclass("ModelConfig", fields, namespace={"__doc__": _model_section.__doc__,
                                                                        "__module__": __name__})


ModelConfig = _model_section()


def captioner_config(model: ModelConfig, vocab) -> CaptionerConfig:
    """The Captioner's full config: this run's model section plus the vocabulary's size and special ids."""
    return CaptionerConfig(vocab_size=len(vocab), pad_id=vocab.pad_id, bos_id=vocab.bos_id, eos_id=vocab.eos_id,
                           **dataclasses.asdict(model))


@dataclass
class DataConfig:
    root: str = ""  # a directory written by data_pipelines.prepare
    features: Optional[str] = None  # optional feature cache built from root by data_pipelines.features
    image_size: int = 224
    captions_per_image: int = 1
    max_caption_len: int = 20
    num_workers: int = 2
    augment: bool = False
    resampled: bool = False
    shuffle_buffer: int = 1000


@dataclass
class TrainSection:
    """``global_batch_size`` (+ ``micro_batch_size`` cap): trainer.training.batch_plan"""
    global_batch_size: int = 32  # images per optimizer step over all processes
    micro_batch_size: int = 0  # cap on the images per forward/backward of one process (0: no cap)
    max_steps: int = 1000  # optimizer steps of the global batch
    max_grad_norm: float = 5.0  # 0 disables clipping (the norm is still logged)
    stop_at_step: int = 0  # > 0: checkpoint and exit at this step (schedules still span max_steps); resume later
    objective: Literal["xe", "scst"] = "xe"  # cross-entropy | self-critical sequence training (see scst:)
    init_from: Optional[str] = None  # a checkpoint dir: start from its weights, fresh optimizer and schedule
    compile: bool = False  # torch.compile the decoder's recurrent step (one graph for any number of rows)
    channels_last: bool = False  # training on images: backbone weights and inputs in NHWC (tensor-core convolutions)


@dataclass
class OptimConfig:
    lr: float = 4e-4
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    # AdamW kernels: auto (torch's choice: foreach on GPU), for_loop (per tensor), foreach (batched), fused (one kernel;
    # CPU and CUDA); all compute the same update up to rounding
    implementation: Literal["auto", "for_loop", "foreach", "fused"] = "auto"


@dataclass
class ScheduleConfig:
    """Learning-rate multiplier: linear warmup, then cosine / step / constant (see trainer.training.schedules)."""

    name: Literal["cosine", "step", "constant"] = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of optim.lr
    step_size: int = 1000  # "step": multiply by gamma every step_size steps after warmup
    gamma: float = 0.8


@dataclass
class TeacherForcingConfig:
    """Scheduled sampling (Bengio et al. 2015): probability of feeding the ground-truth token, per optimizer step."""

    schedule: Literal["constant", "linear", "exponential", "inverse_sigmoid"] = "constant"
    start: float = 1.0
    floor: float = 0.0
    k: float = 1.0  # exponential: k**i (k < 1); inverse_sigmoid: k / (k + exp(i / k)) (k >= 1)
    decay: float = 0.0  # linear: start - decay * i


@dataclass
class LossConfig:
    # weight of the doubly stochastic attention term (summed over regions, CE averaged over words); 0.01, not the
    # paper's 1, which let the term dominate the loss (see docs/ablation.md)
    attention_lambda: float = 0.01
    label_smoothing: float = 0.0


@dataclass
class EvalConfig:
    every_steps: int = 500  # 0: only at the end
    beam_size: int = 3
    max_len: int = 20
    length_penalty: float = 0.0
    # decoding controls (trainer.inference.arguments / modeling.DecodingOptions); all off: plain beam search
    min_len: int = 0
    no_repeat_ngram_size: int = 0
    suppress_unk: bool = False
    sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 32
    split: str = "val"
    num_samples: int = 4  # captions (text) and attention overlays (images) logged per validation


@dataclass
class CheckpointConfig:
    every_steps: int = 500  # 0: only at the end (and on SIGTERM / Ctrl-C)
    keep_last: int = 3


@dataclass
class LoggingConfig:
    every_steps: int = 10
    image_ids: bool = False  # write output_dir/image_ids.jsonl: the image ids of every step's global batch
    # Accelerate trackers: tensorboard (always; OUTPUT_DIR/tensorboard), wandb, mlflow when installed (trainer.training.trackers)
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])


@dataclass
class DistributedConfig:
    timeout_s: float = 1800.0  # process-group timeout; a rank silent this long is reported lost and the run exits


@dataclass
class TrainConfig:
    output_dir: str = "runs/default"
    seed: int = 0
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
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

    def train_loader_options(self, micro_batch_size: int) -> TrainLoaderOptions:
        """How this run's training stream reads ``data.root`` (the same for every epoch and rank)."""
        data = self.data
        return TrainLoaderOptions(batch_size=micro_batch_size, seed=self.seed, num_workers=data.num_workers,
                                  captions_per_image=data.captions_per_image, max_caption_len=data.max_caption_len,
                                  image_size=data.image_size, features_root=data.features, augment=data.augment,
                                  resampled=data.resampled, shuffle_buffer=data.shuffle_buffer)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

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


def _section_fields(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _build(cls, values: dict, prefix: str = ""):
    """Instance of dataclass ``cls`` from a (possibly partial) nested dict, checking every key and type."""
    if not isinstance(values, dict):
        raise ValueError(f"config section {prefix.rstrip('.') or '<top>'!r} must be a mapping, got {values!r}")
    fields = _section_fields(cls)
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
        node[leaf] = yaml.safe_load(raw) if raw.strip() else ""
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
