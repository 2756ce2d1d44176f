"""Decoding options (beam search or sampling, with controls) and the word rules they impose on each step.

``DecodingOptions()`` is plain beam search (beam 3, 20 words): every control off, captions byte-identical to a search
without them. The rules only ever forbid words (their log-probability becomes -inf), so a beam's score can still only
fall and the beam search's early stop stays exact.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DecodingOptions:
    """How ``Captioner.generate`` picks words.

    beam_size: beams per image (1: greedy); ignored when ``sample``. max_len: words at most (without <eos>).
    length_penalty: finished captions rank by log-probability / length**length_penalty. min_len: <eos> is forbidden
    before this many words. no_repeat_ngram_size: n > 0 forbids a word that would repeat an n-gram of the caption.
    suppress_ids: word ids never generated (e.g. ``<unk>``). n_best: captions returned per image, best first (the
    n_best best finished beams, at most beam_size; when sampling, n_best samples). sample: draw words at random from
    softmax(logits / temperature), restricted to the top_k words (0: all) and the smallest set holding top_p of the
    probability (1: all); image i of a call draws from its own generator seeded ``seed + i``, so captions do not
    depend on how images are batched.
    """

    beam_size: int = 3
    max_len: int = 20
    length_penalty: float = 0.0
    min_len: int = 0
    no_repeat_ngram_size: int = 0
    suppress_ids: tuple[int, ...] = ()
    n_best: int = 1
    sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "suppress_ids", tuple(self.suppress_ids))
        error = self.range_error()
        if error:
            raise ValueError(error)

    def range_error(self) -> str | None:
        """The first option out of its range, as a message naming it; None when all are valid."""
        checks = (("beam_size", self.beam_size >= 1, ">= 1"), ("max_len", self.max_len >= 1, ">= 1"),
                  ("length_penalty", self.length_penalty >= 0 and math.isfinite(self.length_penalty), ">= 0"),
                  ("min_len", 0 <= self.min_len <= self.max_len, f"in [0, max_len={self.max_len}]"),
                  ("no_repeat_ngram_size", self.no_repeat_ngram_size >= 0, ">= 0 (0: off)"),
                  ("n_best", self.n_best >= 1, ">= 1"),
                  ("temperature", self.temperature > 0 and math.isfinite(self.temperature), "> 0"),
                  ("top_k", self.top_k >= 0, ">= 0 (0: off)"), ("top_p", 0 < self.top_p <= 1, "in (0, 1]"))
        for name, valid, expected in checks:
            if not valid:
                return f"{name} must be {expected}, got {getattr(self, name)!r}"
        if not self.sample and self.n_best > self.beam_size:
            return f"n_best={self.n_best} exceeds beam_size={self.beam_size}: beam search keeps beam_size candidates"
        if not self.sample and (self.temperature != 1.0 or self.top_k or self.top_p != 1.0):
            return "temperature, top_k and top_p apply to sampling only (set sample)"
        return None

    def replace(self, **changes) -> "DecodingOptions":
        return dataclasses.replace(self, **changes)

    @property
    def has_word_rules(self) -> bool:
        return bool(self.min_len or self.no_repeat_ngram_size or self.suppress_ids)


class WordRules:
    """Forbids words per row at a step: <bos>/<pad> always, ``suppress_ids``, <eos> before ``min_len`` words, and
    words completing an n-gram already in the row's caption (``no_repeat_ngram_size``)."""

    def __init__(self, options: DecodingOptions, bos_id: int, pad_id: int, eos_id: int, device: torch.device):
        self.never = torch.tensor(sorted({bos_id, pad_id, *options.suppress_ids}), device=device)
        self.min_len, self.eos_id, self.pad_id, self.ngram = options.min_len, eos_id, pad_id, options.no_repeat_ngram_size

    def log_probs(self, logits: torch.Tensor, step: int, words_so_far: torch.Tensor | None) -> torch.Tensor:
        """log_softmax(logits) in float32 with forbidden words at -inf; ``words_so_far`` (rows, step) is needed only
        with no_repeat_ngram_size."""
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        log_probs.index_fill_(1, self.never, float("-inf"))
        if step < self.min_len:
            log_probs[:, self.eos_id] = float("-inf")
        if self.ngram and words_so_far is not None and words_so_far.shape[1] >= self.ngram:
            words, banned = repeated_ngram_words(words_so_far, self.ngram)
            log_probs.scatter_(1, torch.where(banned, words, self.pad_id), float("-inf"))  # <pad> is -inf anyway
        return log_probs


def repeated_ngram_words(words: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``words`` (rows, t), the words that would complete an n-gram already in it: (rows, t-n+1)
    word ids and a mask of which of them are banned (their window's first n-1 words equal the row's last n-1)."""
    windows = words.unfold(1, n, 1)  # (rows, t-n+1, n)
    if n == 1:
        return windows[:, :, 0], torch.ones_like(windows[:, :, 0], dtype=torch.bool)
    suffix = words[:, words.shape[1] - n + 1:].unsqueeze(1)
    return windows[:, :, n - 1], (windows[:, :, :n - 1] == suffix).all(dim=2)
