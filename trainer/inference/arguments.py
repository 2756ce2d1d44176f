"""Command-line flags for decoding, shared by ``trainer.caption`` and ``trainer.evaluate_checkpoint``: each value is
range-checked by its argparse type, so a bad one is a one-line usage error before any model is loaded."""
from __future__ import annotations

import argparse
import math
import re

from modeling import DecodingOptions
from modeling.config import Range
from trainer.config.decoding_controls import BY_VOCABULARY, decoding_controls, options_from_controls
from trainer.config.fields import Setting


def at_least(least: int):
    """argparse type: an int >= ``least``."""
    return integer_in(Range(least))


def integer_in(bounds: Range | None):
    """argparse type: an int in ``bounds`` (None: any)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if bounds is not None and not bounds.holds(value):
            raise argparse.ArgumentTypeError(f"must be {bounds.requirement()}, got {value}")
        return value
    parse.__name__ = "int" if bounds is None else f"int {bounds.requirement()}"
    return parse


def real_in(low: float, high: float, low_open: bool = False, high_open: bool = False):
    """argparse type: a finite float in [low, high] (an end open when ``low_open`` / ``high_open``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or not Range(low, high, low_open, high_open).holds(value):
            interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """--checkpoint (a local folder, else a Hugging Face Hub repository id) and --revision (a Hub name's pin)."""
    parser.add_argument("--checkpoint", required=True, metavar="DIR_OR_NAME",
                        help="checkpoint dir (model + config + vocab.json), or a Hub repository ORG/NAME (a local "
                             "folder of that name wins)")
    parser.add_argument("--revision", default=None,
                        help="with a Hub name: the branch, tag or commit to load (default main)")


def flag_of(control: str) -> str:
    """``--beam-size`` of the control ``beam_size``."""
    return "--" + control.replace("_", "-")


def argument_type(control: Setting):
    """The argparse type of a control: its annotation with its Range checked (int, float; else the annotation)."""
    bounds = control.bounds or Range()
    if control.annotation is int:
        return integer_in(control.bounds)
    if control.annotation is float:
        return real_in(-math.inf if bounds.low is None else float(bounds.low),
                       math.inf if bounds.high is None else float(bounds.high), bounds.open_low, bounds.open_high)
    return control.annotation


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """A flag per decoding control (``trainer.config.decoding_controls``), its default DecodingOptions': all off,
    plain beam search."""
    group = parser.add_argument_group("decoding (defaults: plain beam search)")
    for control in decoding_controls():
        if control.annotation is bool:
            action = "store_true" if control.default is False else argparse.BooleanOptionalAction
            group.add_argument(flag_of(control.key), action=action, default=control.default, help=control.doc)
        else:
            group.add_argument(flag_of(control.key), type=argument_type(control), default=control.default,
                               help=f"{control.doc} (default {control.default})")


def with_flag_names(message: str) -> str:
    """A DecodingOptions error as the command line says it: ``min_len`` is ``--min-len``, ``suppress_ids``
    ``--suppress-unk``, ``(set sample)`` is ``(add --sample)``."""
    flags = {control.key: flag_of(control.key) for control in decoding_controls()}
    flags.update({name: flag_of(control.key) for name, control in BY_VOCABULARY.items()})
    pattern = re.compile(rf"(?<![\w-])(set )?({'|'.join(sorted(flags, key=len, reverse=True))})\b")
    return pattern.sub(lambda match: f"{'add ' if match[1] else ''}{flags[match[2]]}", message)


def options_from_args(args: argparse.Namespace) -> DecodingOptions:
    """The DecodingOptions of parsed flags (``suppress_unk`` is applied by the caller, which knows the vocabulary);
    ValueError naming the flag when they contradict each other."""
    try:
        return options_from_controls(args)
    except ValueError as error:
        raise ValueError(with_flag_names(str(error))) from None
