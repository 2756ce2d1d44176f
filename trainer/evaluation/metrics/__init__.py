"""Caption metrics equal to the COCO caption evaluation (pycocoevalcap 1.2).

``compute_caption_metrics`` tokenizes predictions and references like coco-caption's PTB tokenizer, then scores
BLEU-1..4, CIDEr-D and ROUGE-L over the whole set (CIDEr-D's document frequencies need every image at once), without
Java. ``compute_meteor`` adds ``METEOR`` when a ``java`` is on PATH (else ``{}``, logged); ``trainer.evaluation.metrics.per_image``
gives every image's scores too.
"""
from __future__ import annotations

from typing import Hashable, Mapping, Sequence

from trainer.evaluation.metrics.bleu import corpus_bleu
from trainer.evaluation.metrics.cider import cider_d
from trainer.evaluation.metrics.meteor import METEOR_NAME, compute_meteor
from trainer.evaluation.metrics.rouge import rouge_l
from trainer.evaluation.metrics.tokenizer import ptb_tokenize, tokenize_caption

METRIC_NAMES = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L")
OPTIONAL_METRIC_NAMES = (METEOR_NAME,)  # present only where their runtime (Java) is

__all__ = ["METRIC_NAMES", "OPTIONAL_METRIC_NAMES", "compute_caption_metrics", "caption_metrics_and_cider", "compute_meteor",
           "corpus_bleu", "cider_d", "rouge_l", "ptb_tokenize", "tokenize_caption", "check_caption_inputs"]


def _preview(ids: list) -> str:
    shown = ", ".join(repr(image_id) for image_id in ids[:10])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > 10 else "")


def check_caption_inputs(predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]) -> list:
    """Validate the two mappings and return their common ids in the predictions' order; raise ValueError naming the
    ids without a prediction, the ids without references, and any non-string caption."""
    missing = [image_id for image_id in references if image_id not in predictions]
    extra = [image_id for image_id in predictions if image_id not in references]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"no prediction for {len(missing)} referenced id(s): {_preview(missing)}")
        if extra:
            problems.append(f"no references for {len(extra)} predicted id(s): {_preview(extra)}")
        raise ValueError("predictions and references must have the same image ids; " + "; ".join(problems))
    if not predictions:
        raise ValueError("predictions and references are empty: nothing to score")
    for image_id, caption in predictions.items():
        if not isinstance(caption, str):
            raise ValueError(f"prediction for id {image_id!r} must be a string, got {type(caption).__name__}")
        refs = references[image_id]
        if isinstance(refs, str) or not refs or not all(isinstance(ref, str) for ref in refs):
            raise ValueError(f"references for id {image_id!r} must be a non-empty list of strings, got {refs!r}")
    return list(predictions)


def compute_caption_metrics(predictions: Mapping[Hashable, str],
                            references: Mapping[Hashable, Sequence[str]]) -> dict[str, float]:
    """``{"Bleu_1".."Bleu_4", "CIDEr", "ROUGE_L"}`` of raw ``predictions`` {id: caption} against raw
    ``references`` {id: [captions]}, as pycocoevalcap 1.2 computes them (CIDEr is CIDEr-D)."""
    return caption_metrics_and_cider(predictions, references)[0]


def caption_metrics_and_cider(predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
                              ) -> tuple[dict[str, float], dict[Hashable, float]]:
    """``compute_caption_metrics`` and each image's CIDEr-D (which the corpus score averages), by image id."""
    image_ids = check_caption_inputs(predictions, references)
    candidates = [tokenize_caption(predictions[image_id]) for image_id in image_ids]
    tokenized_refs = [[tokenize_caption(ref) for ref in references[image_id]] for image_id in image_ids]
    bleu = corpus_bleu(candidates, tokenized_refs)
    metrics = {f"Bleu_{order + 1}": score for order, score in enumerate(bleu)}
    metrics["CIDEr"], cider_per_image = cider_d(candidates, tokenized_refs)
    metrics["ROUGE_L"] = rouge_l(candidates, tokenized_refs)[0]
    return metrics, {image_id: float(score) for image_id, score in zip(image_ids, cider_per_image)}
