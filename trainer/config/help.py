"""``config_help()``: every config key with its type, default, range and doc, for ``trainer/train.py --help``; built
from the fields' declarations (``trainer.config.fields``)."""
from __future__ import annotations

import inspect
import json
import textwrap
import typing
from typing import Any, Iterable, Literal

from trainer.config.fields import Setting, leaf_settings, sections
from trainer.config.schema import TrainConfig

WIDTH = 118


def type_name(annotation: Any, choices: Iterable[str] | None = None) -> str:
    """``int``, ``str or null``, ``list of str``, ``one of "xe", "scst"``; a ``str`` with ``choices`` (a registry's
    names, as registered now) is ``one of`` them."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal or annotation is str and choices is not None:
        return "one of " + ", ".join(json.dumps(choice) for choice in (args if origin is Literal else choices))
    if origin is list:
        return f"list of {type_name(args[0], choices)}"
    if origin is typing.Union:
        return " or ".join("null" if arg is type(None) else type_name(arg) for arg in args)
    return annotation.__name__


def describe(setting: Setting) -> str:
    """``train.max_steps = 1000  (int, 1 <= value)`` and the doc, indented below it."""
    facts = ", ".join(filter(None, [type_name(setting.annotation, setting.choices),
                                    setting.bounds and str(setting.bounds)]))
    head = f"  {setting.key} = {json.dumps(setting.default)}  ({facts})"
    return "\n".join([head, textwrap.fill(setting.doc, WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)])


def config_help() -> str:
    lines = ["config keys (in the --config YAML, one mapping per section, or as key=value overrides; defaults in "
             "YAML):"]
    for prefix, section in sections(TrainConfig):
        doc = " ".join(inspect.cleandoc(section.__doc__).replace("``", "").split())
        lines.append("\n" + textwrap.fill(f"{prefix.rstrip('.') or 'top level'}: {doc}", WIDTH, subsequent_indent="  "))
        for setting in leaf_settings(section, prefix):
            lines.append(describe(setting))
    return "\n".join(lines)
