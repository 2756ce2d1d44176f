"""Decoding controls of a request: those of ``trainer.config.decoding_controls`` (the fields of ``DecodingOptions``,
``suppress_unk`` for ``suppress_ids``) by their own names (query string or form fields), plus ``attention``; every
value parsed by the type of its field and range-checked by ``DecodingOptions`` itself, so a bad one is a 400 naming
it."""
from __future__ import annotations

import math
from typing import Mapping

from modeling import DecodingOptions
from trainer.config.decoding_controls import SUPPRESS_UNK, decoding_controls
from trainer.serving.limits import RequestError, ServeLimits

# suppress_unk is a flag: not given, the server's default holds
CONTROL_TYPES = {control.key: control.annotation for control in decoding_controls() if control is not SUPPRESS_UNK}
FLAGS = (SUPPRESS_UNK.key, "attention")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
MAX_SEED = 2**63 - 1


def parse_value(name: str, text: str, kind: type):
    """``text`` as a ``kind`` (bool, int or float); RequestError 400 naming ``name`` otherwise."""
    lowered = text.strip().lower()
    if kind is bool:
        if lowered in TRUE or lowered in FALSE:
            return lowered in TRUE
        raise RequestError(400, f"{name}={text[:40]!r}: expected one of {', '.join(TRUE + FALSE)}")
    try:
        value = kind(lowered)
    except ValueError:
        raise RequestError(400, f"{name}={text[:40]!r}: expected {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise RequestError(400, f"{name}={text[:40]!r}: expected a finite number")
    return value


def request_options(fields: Mapping[str, str], defaults: DecodingOptions,
                    limits: ServeLimits) -> tuple[DecodingOptions, bool | None, bool]:
    """(options, suppress_unk (None: not given), attention) of a request's ``fields`` over the server's
    ``defaults``."""
    unknown = sorted(set(fields) - set(CONTROL_TYPES) - set(FLAGS))
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0]!r}; decoding controls: {', '.join([*CONTROL_TYPES, *FLAGS])}")
    changes = {name: parse_value(name, fields[name], kind) for name, kind in CONTROL_TYPES.items() if name in fields}
    flags = [parse_value(name, fields[name], bool) if name in fields else None for name in FLAGS]
    try:
        options = defaults.replace(**changes)
    except ValueError as error:
        raise RequestError(400, str(error)) from None
    for name, most in (("beam_size", limits.max_beam_size), ("n_best", limits.max_beam_size),
                       ("max_len", limits.max_len), ("seed", MAX_SEED)):
        if getattr(options, name) > most:
            raise RequestError(400, f"{name}={getattr(options, name)} exceeds this server's limit of {most}")
    if options.seed < 0:
        raise RequestError(400, f"seed={options.seed}: expected >= 0")
    return options, flags[0], bool(flags[1])
