"""Caption metrics equal to the COCO caption evaluation (pycocoevalcap 1.2), and the one scorer that computes them.

``score_captions`` tokenizes predictions and references like coco-caption's PTB tokenizer, then computes every
registered metric (``registry``: BLEU-1..4, CIDEr-D, ROUGE-L without Java; METEOR where a ``java`` is on PATH, else
left out with one logged line) over the whole set (CIDEr-D's document frequencies need every image at once) and per
image. ``register_metric`` adds one (docs/extending.md#a-metric).
"""
from __future__ import annotations

from trainer.evaluation.metrics.bleu import corpus_bleu, sentence_bleu
from trainer.evaluation.metrics.cider import cider_d
from trainer.evaluation.metrics.metric import CaptionMetric, MetricValues, Score
from trainer.evaluation.metrics.registry import (
    METRIC_NAMES,
    METRICS,
    OPTIONAL_METRIC_NAMES,
    PRIMARY_SCORE,
    check_score_names,
    register_metric,
    report_scores,
    score_names,
)
from trainer.evaluation.metrics.rouge import rouge_l
from trainer.evaluation.metrics.scorer import CaptionScores, check_caption_inputs, compute_caption_metrics, score_captions
from trainer.evaluation.metrics.tokenizer import ptb_tokenize, tokenize_caption

__all__ = ["METRIC_NAMES", "METRICS", "OPTIONAL_METRIC_NAMES", "PRIMARY_SCORE", "CaptionMetric", "CaptionScores",
           "MetricValues", "Score", "check_caption_inputs", "check_score_names", "cider_d", "compute_caption_metrics",
           "corpus_bleu", "ptb_tokenize", "register_metric", "report_scores", "rouge_l", "score_captions",
           "score_names", "sentence_bleu", "tokenize_caption"]
