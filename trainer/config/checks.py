"""``check_config``: every rule a loaded config must satisfy, in one place. First each field's own Range (declared
with its ``setting``) and registry (``registered``), then the rules that relate several fields, each a named function
in ``RULES``. A wrong value stops the run before step 1 with the key, the value and what was expected (types are
checked earlier, by ``trainer.config.schema``)."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from modeling.config import CaptionerConfig
from trainer.config.decoding_controls import options_from_controls
from trainer.config.fields import settings
from trainer.evaluation.metrics import PRIMARY_SCORE, check_score_names
from trainer.training.trackers import check_trackers

# checked by CaptionerConfig itself (the model is also built from a checkpoint's config.json, outside the trainer)
MODEL_SECTION = "model."


def numbers_are_finite(config: Any) -> None:
    for setting in settings(type(config)):
        value = setting.value_in(config)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"config key {setting.key!r} = {value!r} must be a finite number")


def numbers_are_in_range(config: Any) -> None:
    for setting in settings(type(config)):
        value = setting.value_in(config)
        if setting.bounds is None or value is None or setting.key.startswith(MODEL_SECTION):
            continue
        if not setting.bounds.holds(value):
            raise ValueError(f"config key {setting.key!r} = {value!r} is out of range: expected {setting.bounds}")


def names_are_registered(config: Any) -> None:
    """A field declared ``registered`` names an entry of its registry (each item, for a list)."""
    for setting in settings(type(config)):
        if setting.choices is not None:
            value = setting.value_in(config)
            for name in value if isinstance(value, list) else [value]:
                setting.choices.lookup(name, f"config key {setting.key!r}")


def trackers_can_start(config: Any) -> None:
    """Tensorboard and each tracker once, each installed (``trainer.training.trackers.check_trackers``)."""
    check_trackers(config.logging.trackers)


def teacher_forcing_floor_below_start(config: Any) -> None:
    forcing = config.teacher_forcing
    if forcing.floor > forcing.start:
        raise ValueError(f"config key 'teacher_forcing.floor' = {forcing.floor!r} is above teacher_forcing.start = "
                         f"{forcing.start!r}: the floor would always win; expected floor <= start")


def teacher_forcing_k_fits_the_schedule(config: Any) -> None:
    forcing = config.teacher_forcing
    if forcing.schedule == "exponential" and forcing.k >= 1:
        raise ValueError(f"config key 'teacher_forcing.k' = {forcing.k!r}: the exponential schedule start * k**step "
                         f"decays only for 0 < k < 1")
    if forcing.schedule == "inverse_sigmoid" and forcing.k < 1:
        raise ValueError(f"config key 'teacher_forcing.k' = {forcing.k!r}: the inverse_sigmoid schedule "
                         f"k / (k + exp(step / k)) needs k >= 1")


def scst_baseline_has_its_samples(config: Any) -> None:
    if config.scst.baseline == "mean_others" and config.scst.samples < 2:
        raise ValueError(f"config key 'scst.samples' = {config.scst.samples!r}: baseline mean_others needs at least 2 "
                         "samples per image (or scst.baseline=greedy)")


def wsd_schedule_fits_the_run(config: Any) -> None:
    schedule = config.schedule
    if schedule.name != "wsd":
        return
    if schedule.decay_steps < 1:
        raise ValueError(f"config key 'schedule.decay_steps' = {schedule.decay_steps!r}: schedule.name=wsd needs "
                         "decay_steps >= 1 (the steps of its final decay)")


def early_end_has_validations(config: Any) -> None:
    """The run's end is decided at validations: eval.patience and train.max_minutes need some."""
    if config.eval.every_steps:
        return
    for key, value in (("eval.patience", config.eval.patience), ("train.max_minutes", config.train.max_minutes)):
        if value:
            raise ValueError(f"config key {key!r} = {value!r} needs eval.every_steps > 0: the run's end is decided "
                             "after validations")


def model_section_builds(config: Any) -> None:
    """The model section's own checks (sizes, dropout, choices), with a placeholder vocabulary."""
    try:
        CaptionerConfig(vocab_size=8, **dataclasses.asdict(config.model))
    except ValueError as error:
        raise ValueError(f"config section 'model': {error}") from None


def eval_decoding_is_consistent(config: Any) -> None:
    """Decoding values contradicting each other (top_k without sample, min_len above max_len) fail at load."""
    try:
        options_from_controls(config.eval)
    except ValueError as error:
        raise ValueError(f"config section 'eval': {error}") from None


def finetuning_starts_from_a_trained_model(config: Any) -> None:
    """While the backbone trains, the BatchNorm of its channels keeps the statistics of stage 1 (modeling.encoder)."""
    model = config.model
    if model.finetune_from != "none" and model.feature_norm == "batch" and not config.train.init_from:
        raise ValueError(f"config key 'model.finetune_from' = {model.finetune_from!r} needs train.init_from (a stage-1 "
                         "checkpoint trained on the frozen backbone): model.feature_norm=batch keeps the statistics "
                         "of the backbone's channels that stage 1 estimated; or use model.feature_norm=layer")


def data_root_is_set(config: Any) -> None:
    """One dataset (``data.root``) or a mixture (``data.sources``), not both; the sources are checked here."""
    data = config.data
    if data.sources and (data.root or data.features):
        raise ValueError("config keys 'data.root' / 'data.features' and 'data.sources' exclude each other: give one "
                         "dataset as data.root, or every dataset (with its features) as an entry of data.sources")
    if not data.root and not data.sources:
        raise ValueError("config key 'data.root' is required: a directory written by data_pipelines.prepare (or "
                         "data.sources: a list of them)")
    config.data_sources()


def eval_metrics_are_known(config: Any) -> None:
    """``eval.metrics`` names registered scores, the one best/ follows among them (empty: every metric)."""
    names = check_score_names(config.eval.metrics, "config key 'eval.metrics'")
    if names and PRIMARY_SCORE not in names:
        raise ValueError(f"config key 'eval.metrics' = {names!r} must include {PRIMARY_SCORE!r}: best/ and "
                         f"eval.patience follow it")


RULES = (numbers_are_finite, numbers_are_in_range, names_are_registered, trackers_can_start,
         teacher_forcing_floor_below_start,
         teacher_forcing_k_fits_the_schedule, scst_baseline_has_its_samples, wsd_schedule_fits_the_run,
         early_end_has_validations, model_section_builds, eval_decoding_is_consistent,
         finetuning_starts_from_a_trained_model, data_root_is_set, eval_metrics_are_known)


def check_config(config: Any) -> None:
    """ValueError naming the first key whose value is out of range, not finite, or inconsistent with another."""
    for rule in RULES:
        rule(config)
