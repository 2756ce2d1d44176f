"""ROUGE-L exactly as coco-caption's ``Rouge`` scorer (pycocoevalcap 1.2): F-measure (beta 1.2) of the best
LCS precision and the best LCS recall over an image's references, averaged over images."""
from __future__ import annotations

import numpy as np

from trainer.evaluation.metrics.metric import CaptionMetric, MetricValues, Score

BETA = 1.2


def lcs_length(first: list[str], second: list[str]) -> int:
    """Longest common subsequence length, bit-parallel (Hyyro 2004): one big-int update per token of ``second``."""
    match_masks: dict[str, int] = {}
    for index, token in enumerate(first):
        match_masks[token] = match_masks.get(token, 0) | (1 << index)
    all_ones = (1 << len(first)) - 1
    row = all_ones
    for token in second:
        matches = row & match_masks.get(token, 0)
        row = ((row + matches) | (row - matches)) & all_ones
    return len(first) - bin(row).count("1")


def rouge_l(candidates: list[str], references: list[list[str]], beta: float = BETA) -> tuple[float, np.ndarray]:
    """Mean and per-image ROUGE-L of tokenized, space-joined captions (split on single spaces, as coco-caption)."""
    if len(candidates) != len(references) or not candidates:
        raise ValueError(f"rouge_l needs one reference list per candidate, got {len(candidates)} candidates and "
                         f"{len(references)} reference lists")
    scores = np.zeros(len(candidates))
    for index, (candidate, refs) in enumerate(zip(candidates, references)):
        if not refs:
            raise ValueError(f"image #{index} has no reference captions (expected at least one)")
        candidate_tokens = candidate.split(" ")
        best_precision = best_recall = 0.0
        for ref in refs:
            ref_tokens = ref.split(" ")
            common = lcs_length(ref_tokens, candidate_tokens)
            best_precision = max(best_precision, common / float(len(candidate_tokens)))
            best_recall = max(best_recall, common / float(len(ref_tokens)))
        if best_precision != 0 and best_recall != 0:
            scores[index] = ((1 + beta ** 2) * best_precision * best_recall) / float(best_recall + beta ** 2 * best_precision)
    return float(np.mean(scores)), scores


def rouge_l_scores(candidates: list[str], references: list[list[str]], per_image: bool) -> MetricValues:
    """Mean and per-image ROUGE-L (the mean is over the per-image values)."""
    return {"ROUGE_L": rouge_l(candidates, references)}


ROUGE_L = CaptionMetric("rouge", (Score("ROUGE_L", "ROUGE-L"),), rouge_l_scores, report_column=30)
