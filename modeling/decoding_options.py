"""Decoding options: beam search or sampling, with controls; plain Python (no torch), so the ONNX captioner uses them.

``DecodingOptions()`` is plain beam search (beam 3, 20 words): every control off, captions byte-identical to a search
without them. Each field is declared once with ``setting(default, doc, Range)``: the ``eval:`` config section, the
decoding flags of the command lines and the fields of a serving request are all built from these declarations
(``trainer.config.decoding_controls``), and ``range_error`` checks each value against its Range. The word rules the
controls impose on each step are ``modeling.word_rules``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass

from .config import Range, bounds_of, setting

AT_LEAST_0, AT_LEAST_1, POSITIVE = Range(0), Range(1), Range(0, open_low=True)


@dataclass(frozen=True)
class DecodingOptions:
    """How ``Captioner.generate`` picks words; each field's declaration says what it does and its range."""

    beam_size: int = setting(3, "beams per image (1: greedy search); ignored when sampling", AT_LEAST_1)
    max_len: int = setting(20, "words of a caption at most (without <eos>)", AT_LEAST_1)
    length_penalty: float = setting(0.0, "finished captions rank by log-probability / length**length_penalty (0: the "
                                    "sum of log-probabilities)", AT_LEAST_0)
    min_len: int = setting(0, "<eos> is forbidden before this many words (at most max_len)", AT_LEAST_0)
    no_repeat_ngram_size: int = setting(0, "n > 0: a word that would repeat an n-gram of the caption is forbidden; "
                                        "0: off", AT_LEAST_0)
    suppress_ids: tuple[int, ...] = setting((), "word ids never generated (configs, flags and requests say "
                                            "suppress_unk: the vocabulary's <unk>)")
    n_best: int = setting(1, "captions returned per image, best first: the n_best best finished beams (at most "
                          "beam_size), or n_best samples", AT_LEAST_1)
    sample: bool = setting(False, "draw words at random instead of beam search")
    temperature: float = setting(1.0, "sample: draw from softmax(logits / temperature)", POSITIVE)
    top_k: int = setting(0, "sample: only from the k most likely words; 0: all", AT_LEAST_0)
    top_p: float = setting(1.0, "sample: only from the smallest set of words holding this probability; 1: all",
                           Range(0, 1, open_low=True))
    seed: int = setting(0, "sample: image i draws from its own generator seeded seed + i (i counts the images of a "
                        "call, or of a process's validation stream), so batching never changes a caption")

    def __post_init__(self) -> None:
        object.__setattr__(self, "suppress_ids", tuple(self.suppress_ids))
        error = self.range_error()
        if error:
            raise ValueError(error)

    def range_error(self) -> str | None:
        """The first option of a wrong type, out of its declared Range, or contradicting another, as a message naming
        it; None when all are valid."""
        for spec in dataclasses.fields(self):
            problem = _value_problem(_hints(type(self))[spec.name], bounds_of(spec), getattr(self, spec.name))
            if problem:
                return f"{spec.name} must be {problem}, got {getattr(self, spec.name)!r}"
        if self.min_len > self.max_len:
            return f"min_len must be in [0, max_len={self.max_len}], got {self.min_len!r}"
        if not self.sample and self.n_best > self.beam_size:
            return f"n_best={self.n_best} exceeds beam_size={self.beam_size}: beam search keeps beam_size candidates"
        if not self.sample and (self.temperature != 1.0 or self.top_k or self.top_p != 1.0):
            return "temperature, top_k and top_p apply to sampling only (set sample)"
        return None

    def replace(self, **changes) -> "DecodingOptions":
        return dataclasses.replace(self, **changes)

    def changed(self) -> dict:
        """The fields whose value differs from their default, by name (``{}``: plain beam search)."""
        return {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)
                if getattr(self, spec.name) != spec.default}

    @property
    def has_word_rules(self) -> bool:
        return bool(self.min_len or self.no_repeat_ngram_size or self.suppress_ids)


@functools.cache
def _hints(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def _value_problem(annotation, bounds: Range | None, value) -> str | None:
    """What ``value`` must be for a field of this type and Range (``"an integer"``, ``">= 1"``); None when valid."""
    if annotation is bool:
        return None if isinstance(value, bool) else "true or false"
    if annotation is int and (isinstance(value, bool) or not isinstance(value, int)):
        return "an integer"
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "a number"
        if not math.isfinite(value):
            return f"a finite number{'' if bounds is None else ' ' + bounds.requirement()}"
    if typing.get_origin(annotation) is tuple and not all(isinstance(item, int) for item in value):
        return "integers"
    if bounds is not None and not bounds.holds(value):
        return bounds.requirement()
    return None
