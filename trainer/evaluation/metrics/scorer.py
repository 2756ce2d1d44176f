"""The one scorer: registered metrics of raw captions, over the corpus and per image. Validation, evaluation, the
baselines and the report all score through ``score_captions``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable, Mapping, Sequence

from trainer.evaluation.metrics.registry import METRICS, check_score_names
from trainer.evaluation.metrics.tokenizer import tokenize_caption


@dataclass
class CaptionScores:
    """``metrics``: corpus scores by name; ``per_image``: image id -> that image's scores by name (those its metrics
    gave: all of them unless scored with ``per_image=False``)."""

    metrics: dict[str, float]
    per_image: dict[Hashable, dict[str, float]]


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


def score_captions(predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]],
                   names: Iterable[str] | None = None, per_image: bool = True) -> CaptionScores:
    """Scores ``names`` (default: every registered metric's; a metric that cannot run here is left out) of raw
    ``predictions`` {id: caption} against raw ``references`` {id: [captions]}, both PTB-tokenized as coco-caption
    does. ``per_image=False`` lets a metric skip per-image values that cost extra (BLEU's)."""
    wanted = None if names is None else set(check_score_names(names, "score_captions"))
    image_ids = check_caption_inputs(predictions, references)
    candidates = [tokenize_caption(predictions[image_id]) for image_id in image_ids]
    tokenized_refs = [[tokenize_caption(ref) for ref in references[image_id]] for image_id in image_ids]
    metrics, columns = {}, {}
    for metric in list(METRICS.values()):
        if wanted is not None and wanted.isdisjoint(metric.score_names):
            continue
        values = metric.compute(candidates, tokenized_refs, per_image)
        if values is None:
            continue
        metric.check_values(values, len(image_ids))
        for name in metric.score_names:
            if wanted is None or name in wanted:
                metrics[name], column = float(values[name][0]), values[name][1]
                if column is not None:
                    columns[name] = column
    per_image_scores = {image_id: {name: float(column[index]) for name, column in columns.items()}
                        for index, image_id in enumerate(image_ids)}
    return CaptionScores(metrics=metrics, per_image=per_image_scores)


def compute_caption_metrics(predictions: Mapping[Hashable, str],
                            references: Mapping[Hashable, Sequence[str]]) -> dict[str, float]:
    """Corpus scores of every registered metric that needs no outside runtime (built in: ``Bleu_1``..``Bleu_4``,
    ``CIDEr`` (CIDEr-D), ``ROUGE_L``, as pycocoevalcap 1.2 computes them); what the reference rows show."""
    names = [name for metric in METRICS.values() if not metric.optional for name in metric.score_names]
    return score_captions(predictions, references, names, per_image=False).metrics
