"""The declared fields of a config, walked: each leaf field's dotted key, type, default, doc and Range.

Fields are declared with ``modeling.config.setting`` (the model's config declares its fields the same way, and the
trainer's ``model:`` section copies them); the range checks (``trainer.config.checks``) and ``--help``
(``trainer.config.help``) read them from here.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterator

from data_pipelines.registry import Registry
from modeling.config import Range, bounds_of, doc_of, setting

AT_LEAST_0, AT_LEAST_1, POSITIVE = Range(0), Range(1), Range(0, open_low=True)
PROBABILITY, FRACTION_BELOW_1 = Range(0, 1), Range(0, 1, open_high=True)
SEED_RANGE = Range(0, 2**32 - 1)


@dataclass(frozen=True)
class Setting:
    """One leaf field of a config section."""

    key: str  # dotted: "train.max_steps"
    annotation: Any
    spec: dataclasses.Field

    @property
    def doc(self) -> str:
        return doc_of(self.spec)

    @property
    def bounds(self) -> Range | None:
        return bounds_of(self.spec)

    @property
    def choices(self) -> Registry | None:
        """The registry the value (each value of a list) is a name of (``registered``), else None."""
        return self.spec.metadata.get("choices")

    @property
    def default(self) -> Any:
        spec = self.spec
        return spec.default_factory() if spec.default is dataclasses.MISSING else spec.default

    def value_in(self, config: Any) -> Any:
        node = config
        for part in self.key.split("."):
            node = getattr(node, part)
        return node


def registered(default: Any, doc: str, registry: Registry) -> Any:
    """A ``setting`` whose value, or each value of its list, must be a name in ``registry``: the allowed values are
    read when the config is checked (``trainer.config.checks``) and listed by ``--help``, so a name registered before
    the config is loaded is one of them."""
    spec = setting(default, doc)
    spec.metadata = MappingProxyType({**spec.metadata, "choices": registry})
    return spec


def section_fields(cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {spec.name: hints[spec.name] for spec in dataclasses.fields(cls)}


def sections(cls: type, prefix: str = "") -> Iterator[tuple[str, type]]:
    """``(dotted prefix, dataclass)`` of ``cls`` and of every section below it, in declaration order."""
    yield prefix, cls
    for name, annotation in section_fields(cls).items():
        if dataclasses.is_dataclass(annotation):
            yield from sections(annotation, f"{prefix}{name}.")


def leaf_settings(section: type, prefix: str = "") -> Iterator[Setting]:
    """The fields of dataclass ``section`` that are not sections themselves, keys prefixed."""
    annotations = section_fields(section)
    for spec in dataclasses.fields(section):
        if not dataclasses.is_dataclass(annotations[spec.name]):
            yield Setting(prefix + spec.name, annotations[spec.name], spec)


def settings(cls: type) -> Iterator[Setting]:
    """Every leaf field of dataclass ``cls`` and its sections, in declaration order."""
    for prefix, section in sections(cls):
        yield from leaf_settings(section, prefix)
