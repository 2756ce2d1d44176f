"""Caption tokenizer and word vocabulary (built from training captions only, saved as vocab.json)."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from data_pipelines.data_root import is_remote, read_location
from data_pipelines.safe_write import write_file

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
VOCAB_FORMAT = "showattend-vocab"
VOCAB_VERSION = 1

# PTB-style clitics stay separate tokens ("man's" -> "man", "'s"; "don't" -> "do", "n't"), as coco-caption's tokenizer does.
_BRACKET_TOKENS = re.compile(r"-[lr][rcs]b-")  # PTB spellings of brackets, dropped like the brackets themselves
_NEGATION = re.compile(r"(?<=[^\W_])n't\b")
_CLITIC = re.compile(r"(?<=[^\W_])'(s|re|ve|ll|d|m)\b")
# A word is letters/digits, optionally joined by inner hyphens, dots or apostrophes ("t-shirt", "3.5", "o'clock").
# Everything else (the PTB punctuation coco-caption drops: . , ? ! : ; - -- ... ` `` '' brackets, and other symbols) splits.
_TOKEN = re.compile(r"[^\W_]+(?:[-.'][^\W_]+)*|n't|'(?:s|re|ve|ll|d|m)\b")


def tokenize(text: str) -> list[str]:
    """Lowercase, drop punctuation, split into words: ``tokenize("A man, riding.") == ["a", "man", "riding"]``."""
    text = _BRACKET_TOKENS.sub(" ", text.lower().replace("\u2019", "'"))
    text = _NEGATION.sub(" n't", text)
    text = _CLITIC.sub(r" '\1", text)
    return _TOKEN.findall(text)


def count_words(captions: Iterable[str], max_len: int | None = None) -> Counter[str]:
    """How often each word occurs in ``captions``, counting the first ``max_len`` words of each."""
    counter: Counter[str] = Counter()
    for caption in captions:
        counter.update(tokenize(caption)[:max_len])
    return counter


class Vocabulary:
    """Word <-> id mapping with specials ``<pad>``=0, ``<bos>``=1, ``<eos>``=2, ``<unk>``=3."""

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self, words: Sequence[str], counts: Sequence[int] | None = None, min_freq: int = 1):
        """``words``: the non-special words in id order (ids start at 4)."""
        self.itos: list[str] = [*SPECIALS, *words]
        self.stoi: dict[str, int] = {}
        for index, word in enumerate(self.itos):
            if word in self.stoi:
                raise ValueError(f"vocabulary word {word!r} appears twice (ids {self.stoi[word]} and {index})")
            self.stoi[word] = index
        self.counts = list(counts) if counts is not None else [0] * len(words)
        if len(self.counts) != len(words):
            raise ValueError(f"{len(self.counts)} counts given for {len(words)} words")
        self.min_freq = min_freq

    @classmethod
    def build(cls, train_captions: Iterable[str], min_freq: int = 5, max_len: int | None = None) -> "Vocabulary":
        """Keep words seen >= ``min_freq`` times; order by frequency (desc) then word. ``max_len`` caps the words
        counted per caption (words past it never reach the model, see ``encode``)."""
        return cls.from_counts(count_words(train_captions, max_len), min_freq)

    @classmethod
    def from_counts(cls, counts: Counter[str], min_freq: int = 5) -> "Vocabulary":
        """``build`` from word counts (``count_words``)."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        kept = sorted((item for item in counts.items() if item[1] >= min_freq and item[0] not in SPECIALS),
                      key=lambda item: (-item[1], item[0]))
        return cls([word for word, _ in kept], [count for _, count in kept], min_freq=min_freq)

    @property
    def num_words(self) -> int:
        """Words besides the specials."""
        return len(self.itos) - len(SPECIALS)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def encode(self, text: str, max_len: int | None = None) -> list[int]:
        """``[bos] + word ids + [eos]``; unknown words map to ``unk_id``; ``max_len`` caps the number of words."""
        words = tokenize(text)[:max_len]
        return [self.bos_id, *(self.stoi.get(word, self.unk_id) for word in words), self.eos_id]

    def decode(self, ids: Iterable[int]) -> str:
        """Words joined by spaces; skips ``<bos>``/``<pad>``, stops at the first ``<eos>``."""
        words = []
        for raw in ids:
            index = int(raw)
            if index == self.eos_id:
                break
            if index in (self.bos_id, self.pad_id):
                continue
            if not 0 <= index < len(self.itos):
                raise ValueError(f"token id {index} is outside the vocabulary (size {len(self.itos)})")
            words.append(self.itos[index])
        return " ".join(words)

    def save(self, path: str | Path) -> None:
        """Write ``vocab.json`` (words in id order, their training counts, min_freq)."""
        payload = {"format": VOCAB_FORMAT, "version": VOCAB_VERSION, "min_freq": self.min_freq,
                   "specials": list(SPECIALS), "words": self.itos[len(SPECIALS):], "counts": self.counts}
        write_file(path, json.dumps(payload, ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        """Read a ``vocab.json`` written by ``save`` (a path or a URL, ``data_pipelines.data_root``); a malformed file
        raises ValueError naming the file and key."""
        path = path if is_remote(path) else Path(path)
        try:
            payload = json.loads(read_location(path).decode("utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None
        if not isinstance(payload, dict) or payload.get("format") != VOCAB_FORMAT:
            raise ValueError(f"{path}: not a vocabulary file (expected an object with \"format\": \"{VOCAB_FORMAT}\")")
        if payload.get("specials") != list(SPECIALS):
            raise ValueError(f"{path}: key 'specials' is {payload.get('specials')!r}, expected {list(SPECIALS)}")
        words, counts = payload.get("words"), payload.get("counts")
        if not isinstance(words, list) or not all(isinstance(word, str) and word for word in words):
            raise ValueError(f"{path}: key 'words' must be a list of non-empty strings")
        if not isinstance(counts, list) or len(counts) != len(words):
            raise ValueError(f"{path}: key 'counts' must be a list as long as 'words' ({len(words)})")
        try:
            return cls(words, counts, min_freq=int(payload.get("min_freq", 1)))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
