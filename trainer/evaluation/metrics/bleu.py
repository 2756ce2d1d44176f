"""Corpus BLEU-1..4 exactly as coco-caption's ``Bleu`` scorer (pycocoevalcap 1.2, "closest" reference length)."""
from __future__ import annotations

import math

import numpy as np

from trainer.evaluation.metrics.metric import CaptionMetric, MetricValues, Score
from trainer.evaluation.metrics.ngrams import count_caption_ngrams, lookup

# coco-caption's smoothing constants: a zero match count still gives a finite (tiny) precision.
TINY = 1e-15
SMALL = 1e-9


def corpus_bleu(candidates: list[str], references: list[list[str]], max_order: int = 4) -> list[float]:
    """BLEU-1..``max_order`` of tokenized, space-joined captions (clipped n-gram matches summed over the corpus)."""
    if not candidates:
        raise ValueError("corpus_bleu needs at least one image")
    layout = count_caption_ngrams(candidates, references, max_order)
    counts, num_images = layout.counts, layout.num_images
    is_candidate = counts.sentence < num_images

    # Clip each candidate n-gram count by its maximum count in any one reference of the same image.
    ref_keys = (layout.reference_image[counts.sentence[~is_candidate] - num_images] * counts.num_grams
                + counts.gram[~is_candidate])
    ordering = np.argsort(ref_keys, kind="stable")
    sorted_keys = ref_keys[ordering]
    group_start = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])[:len(sorted_keys)]
    unique_keys = sorted_keys[group_start]
    max_ref_count = np.zeros(len(group_start) + 1, dtype=np.int64)  # + a slot for lookups in an empty table
    if len(group_start):
        max_ref_count[:-1] = np.maximum.reduceat(counts.count[~is_candidate][ordering], group_start)
    candidate_keys = counts.sentence[is_candidate] * counts.num_grams + counts.gram[is_candidate]
    position, found = lookup(unique_keys, candidate_keys)
    clipped = np.where(found, np.minimum(counts.count[is_candidate], max_ref_count[position]), 0)
    correct = np.bincount(counts.order[is_candidate], weights=clipped, minlength=max_order)

    test_lengths = counts.lengths[:num_images]
    guess = [int(np.maximum(test_lengths - order, 0).sum()) for order in range(max_order)]

    # "closest" reference length: smallest |ref - test|, ties broken towards the shorter reference.
    ref_lengths = counts.lengths[num_images:]
    ref_test_lengths = test_lengths[layout.reference_image]
    stride = int(ref_lengths.max()) + 1
    closeness = np.abs(ref_lengths - ref_test_lengths) * stride + ref_lengths
    group_start = np.flatnonzero(np.r_[True, layout.reference_image[1:] != layout.reference_image[:-1]])
    effective_ref_length = int((np.minimum.reduceat(closeness, group_start) % stride).sum())
    test_length = int(test_lengths.sum())

    scores, product = [], 1.0
    for order in range(max_order):
        product *= float(int(correct[order]) + TINY) / (guess[order] + SMALL)
        scores.append(product ** (1.0 / (order + 1)))
    ratio = (test_length + TINY) / (effective_ref_length + SMALL)
    if ratio < 1:
        scores = [score * math.exp(1 - 1 / ratio) for score in scores]
    return scores


def sentence_bleu(candidates: list[str], references: list[list[str]]) -> np.ndarray:
    """(N, 4) BLEU-1..4 of each tokenized caption alone (same smoothing and "closest" length), as coco-caption's
    per-image list."""
    return np.array([corpus_bleu([candidate], [refs]) for candidate, refs in zip(candidates, references)])


BLEU_SCORES = tuple(Score(f"Bleu_{order}", f"BLEU-{order}", in_gallery=order == 4) for order in range(1, 5))


def bleu_scores(candidates: list[str], references: list[list[str]], per_image: bool) -> MetricValues:
    """Corpus BLEU-1..4 and, if ``per_image``, each image's own (which costs one corpus BLEU per image)."""
    columns = sentence_bleu(candidates, references).T if per_image else [None] * len(BLEU_SCORES)
    return {score.name: (value, column)
            for score, value, column in zip(BLEU_SCORES, corpus_bleu(candidates, references), columns)}


BLEU = CaptionMetric("bleu", BLEU_SCORES, bleu_scores, report_column=10)
