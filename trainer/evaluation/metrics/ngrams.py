"""Vectorised n-gram counting shared by BLEU and CIDEr-D: every sentence's n-gram counts as flat numpy arrays."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np


@dataclass
class NgramCounts:
    """Sparse (sentence, n-gram) -> count table; n-gram ids are global across orders (1..max_order)."""

    sentence: np.ndarray  # (E,) int64 sentence index of each entry
    gram: np.ndarray      # (E,) int64 n-gram id
    order: np.ndarray     # (E,) int64 n-gram order minus one (0 = unigram)
    count: np.ndarray     # (E,) int64 occurrences of the n-gram in the sentence
    lengths: np.ndarray   # (S,) int64 words per sentence
    num_grams: int        # number of distinct n-gram ids


def _dense_ids(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Map arbitrary int64 codes to 0..K-1 (K = distinct codes)."""
    unique, inverse = np.unique(codes, return_inverse=True)
    return inverse.astype(np.int64), len(unique)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (numpy 2's hash-based default is several times slower on large int arrays)."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into ``sorted_keys``, found mask) of each query; indices of queries not found are meaningless."""
    if len(sorted_keys) == 0:
        return np.zeros(len(queries), dtype=np.int64), np.zeros(len(queries), dtype=bool)
    position = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return position, sorted_keys[position] == queries


def count_ngrams(sentences: list[str], max_order: int = 4) -> NgramCounts:
    """Count the 1..``max_order``-grams of whitespace-split ``sentences`` (as coco-caption's ``precook`` does)."""
    split = [sentence.split() for sentence in sentences]
    tokens = list(chain.from_iterable(split))
    word_ids = {word: index for index, word in enumerate(sorted(set(tokens)))}  # sorted: per-image sums in one order
    lengths = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    words = np.fromiter(map(word_ids.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    owner = np.repeat(np.arange(len(sentences), dtype=np.int64), lengths)       # sentence of each token
    words_left = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(words))  # tokens from here to sentence end

    entry_sentence, entry_gram, entry_order = [], [], []
    prefix_ids, offset = words, 0
    vocab_size = max(len(word_ids), 1)
    for order in range(max_order):
        starts = np.flatnonzero(words_left > order)  # positions where an (order+1)-gram fits
        if order == 0:
            gram_ids, num_ids = _dense_ids(words)
        else:  # (order+1)-gram = dense id of its order-gram prefix, then the next word
            gram_ids, num_ids = _dense_ids(prefix_ids[starts] * vocab_size + words[starts + order])
        prefix_ids = np.zeros(len(words), dtype=np.int64)
        prefix_ids[starts] = gram_ids
        entry_sentence.append(owner[starts])
        entry_gram.append(gram_ids + offset)
        entry_order.append(np.full(len(starts), order, dtype=np.int64))
        offset += num_ids

    gram = np.concatenate(entry_gram)
    order_of_gram = np.zeros(max(offset, 1), dtype=np.int64)
    order_of_gram[gram] = np.concatenate(entry_order)
    stride = max(offset, 1)
    keys, counts = np.unique(np.concatenate(entry_sentence) * stride + gram, return_counts=True)
    unique_gram = keys % stride
    return NgramCounts(sentence=keys // stride, gram=unique_gram, order=order_of_gram[unique_gram],
                       count=counts.astype(np.int64), lengths=lengths, num_grams=offset)


@dataclass
class CaptionNgrams:
    """N-gram counts of one candidate per image (sentences 0..I-1) followed by every reference (image-major)."""

    counts: NgramCounts
    num_images: int
    reference_image: np.ndarray  # (R,) image index of each reference; reference j is sentence I + j


def count_caption_ngrams(candidates: list[str], references: list[list[str]], max_order: int = 4) -> CaptionNgrams:
    """Count n-grams of ``candidates[i]`` and ``references[i]`` (tokenized, space-joined strings)."""
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    for index, refs in enumerate(references):
        if not refs:
            raise ValueError(f"image #{index} has no reference captions (expected at least one)")
    flat_references = [ref for refs in references for ref in refs]
    reference_image = np.repeat(np.arange(len(references), dtype=np.int64), [len(refs) for refs in references])
    return CaptionNgrams(count_ngrams(list(candidates) + flat_references, max_order), len(candidates), reference_image)
