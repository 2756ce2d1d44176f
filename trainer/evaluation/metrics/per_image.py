"""Corpus metrics together with every image's own scores, so users can find the failures.

Per-image values are those coco-caption's scorers return beside the corpus score: BLEU-n of the image alone (same
smoothing and "closest" length), CIDEr-D of the image with document frequencies of the whole set, ROUGE-L, and METEOR
when Java is there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np

from trainer.evaluation.metrics import check_caption_inputs, cider_d, corpus_bleu, rouge_l, tokenize_caption
from trainer.evaluation.metrics.meteor import METEOR_NAME, meteor_scores

BLEU_NAMES = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4")


@dataclass
class CaptionScores:
    """``metrics``: corpus scores by name; ``per_image``: image id -> scores by name (same names)."""

    metrics: dict[str, float]
    per_image: dict[Hashable, dict[str, float]]


def sentence_bleu(candidates: list[str], references: list[list[str]]) -> np.ndarray:
    """(N, 4) BLEU-1..4 of each tokenized caption alone, as coco-caption's per-image list."""
    return np.array([corpus_bleu([candidate], [refs]) for candidate, refs in zip(candidates, references)])


def score_captions(predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]],
                   meteor: bool = True) -> CaptionScores:
    """Corpus and per-image BLEU-1..4, CIDEr (CIDEr-D), ROUGE_L and, if ``meteor`` and Java allow, METEOR of raw
    ``predictions`` {id: caption} against raw ``references`` {id: [captions]}; corpus values equal
    ``compute_caption_metrics``."""
    image_ids = check_caption_inputs(predictions, references)
    candidates = [tokenize_caption(predictions[image_id]) for image_id in image_ids]
    tokenized_refs = [[tokenize_caption(ref) for ref in references[image_id]] for image_id in image_ids]
    metrics = dict(zip(BLEU_NAMES, corpus_bleu(candidates, tokenized_refs)))
    columns = dict(zip(BLEU_NAMES, sentence_bleu(candidates, tokenized_refs).T))
    metrics["CIDEr"], columns["CIDEr"] = cider_d(candidates, tokenized_refs)
    metrics["ROUGE_L"], columns["ROUGE_L"] = rouge_l(candidates, tokenized_refs)
    if meteor and (scores := meteor_scores(candidates, tokenized_refs)) is not None:
        metrics[METEOR_NAME], columns[METEOR_NAME] = scores
    per_image = {image_id: {name: float(column[index]) for name, column in columns.items()}
                 for index, image_id in enumerate(image_ids)}
    return CaptionScores(metrics=metrics, per_image=per_image)
