"""The decoding controls users set, derived from ``modeling.DecodingOptions``: every field with its type, default, doc
and Range, ``suppress_ids`` given as ``suppress_unk`` (users do not know word ids).

The ``eval:`` config section (``with_decoding_controls``), the decoding flags of the command lines
(``trainer.inference.arguments``) and the fields of a serving request (``trainer.serving.controls``) are built from
``decoding_controls()``; ``options_from_controls`` turns their values back into DecodingOptions, whose own checks
then apply. A field added to DecodingOptions appears in all of them.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

from modeling.config import setting
from modeling.decoding_options import DecodingOptions
from trainer.config.fields import Setting, leaf_settings

SUPPRESS_UNK = Setting("suppress_unk", bool, setting(False, "never generate <unk>, the vocabulary's unknown word"))
BY_VOCABULARY = {"suppress_ids": SUPPRESS_UNK}  # DecodingOptions fields users give by another name
NOT_IN_VALIDATION = ("n_best",)  # validation scores one caption per image


def decoding_controls(validation: bool = False) -> list[Setting]:
    """The controls in DecodingOptions' order (``validation``: those of the ``eval:`` section)."""
    return [BY_VOCABULARY.get(control.key, control) for control in leaf_settings(DecodingOptions)
            if not (validation and control.key in NOT_IN_VALIDATION)]


def options_from_controls(values: Any, unk_id: int | None = None) -> DecodingOptions:
    """DecodingOptions of an object holding a value per control (an ``eval:`` section, parsed flags; a control it
    lacks keeps its default). With ``unk_id``, suppress_unk suppresses it; without, the caller, which knows the
    vocabulary, adds it. ValueError from DecodingOptions' own checks, naming the field."""
    changes = {control.key: getattr(values, control.key) for control in decoding_controls()
               if control is not SUPPRESS_UNK and hasattr(values, control.key)}
    if unk_id is not None and getattr(values, SUPPRESS_UNK.key, False):
        changes["suppress_ids"] = (unk_id,)
    return DecodingOptions(**changes)


def with_decoding_controls(section: type, after: str) -> type:
    """Dataclass ``section`` (a config section) with the validation controls as fields after its field ``after``,
    each declared as in DecodingOptions (default, doc, Range)."""
    hints = typing.get_type_hints(section)
    own = [(spec.name, hints[spec.name], _copy(spec)) for spec in dataclasses.fields(section)]
    position = [name for name, _, _ in own].index(after) + 1
    controls = [(control.key, control.annotation, _copy(control.spec)) for control in decoding_controls(True)]
    return dataclasses.make_dataclass(section.__name__, own[:position] + controls + own[position:],
                                      namespace={"__doc__": section.__doc__, "__module__": section.__module__})


def _copy(spec: dataclasses.Field) -> dataclasses.Field:
    if spec.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=spec.default_factory, metadata=spec.metadata)
    return dataclasses.field(default=spec.default, metadata=spec.metadata)
