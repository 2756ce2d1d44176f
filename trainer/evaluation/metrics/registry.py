"""The metrics validation, evaluation and the report compute, by name, in the order they are computed and logged.

A metric of ours is a module with a ``CaptionMetric`` plus one entry in ``BUILTIN_METRICS``; a metric of yours needs
only ``register_metric(MY_METRIC)`` before the run (docs/extending.md#a-metric).
"""
from __future__ import annotations

from typing import Iterable

from trainer.evaluation.metrics.bleu import BLEU
from trainer.evaluation.metrics.cider import CIDER_D
from trainer.evaluation.metrics.meteor import METEOR
from trainer.evaluation.metrics.metric import SCORE_NAME, CaptionMetric, Score
from trainer.evaluation.metrics.rouge import ROUGE_L

BUILTIN_METRICS = (BLEU, CIDER_D, ROUGE_L, METEOR)
PRIMARY_SCORE = "CIDEr"  # what best/ and the stage ends follow; the report's gallery sorts by it first

# Scores of the built-in metrics that are always there, and those present only where their runtime (Java) is.
METRIC_NAMES = tuple(name for metric in BUILTIN_METRICS if not metric.optional for name in metric.score_names)
OPTIONAL_METRIC_NAMES = tuple(name for metric in BUILTIN_METRICS if metric.optional for name in metric.score_names)

METRICS: dict[str, CaptionMetric] = {}


def register_metric(metric: CaptionMetric) -> CaptionMetric:
    """Add ``metric`` after those registered (its scores come last in results and logs); ValueError when its name or
    one of its score names is taken or is not a plain word."""
    taken = {name: other.name for other in METRICS.values() for name in other.score_names}
    if metric.name in METRICS:
        raise ValueError(f"a metric named {metric.name!r} is already registered")
    if not metric.scores:
        raise ValueError(f"metric {metric.name!r} gives no scores")
    for name in metric.score_names:
        if not SCORE_NAME.fullmatch(name):
            raise ValueError(f"metric {metric.name!r}: score name {name!r} is not a plain word (letters, digits, _)")
        if name in taken:
            raise ValueError(f"metric {metric.name!r}: score name {name!r} is already given by metric {taken[name]!r}")
    if len(set(metric.score_names)) != len(metric.scores):
        raise ValueError(f"metric {metric.name!r} names a score twice: {list(metric.score_names)}")
    METRICS[metric.name] = metric
    return metric


for _metric in BUILTIN_METRICS:
    register_metric(_metric)


def score_names() -> list[str]:
    """Every registered score name, in the order they are computed."""
    return [name for metric in METRICS.values() for name in metric.score_names]


def check_score_names(names: Iterable[str], where: str) -> list[str]:
    """``names`` as a list when each is a registered score, else ValueError naming ``where`` and listing the choices."""
    names, known = list(names), score_names()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"{where}: unknown metric{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(known)}")
    return names


def report_scores() -> list[Score]:
    """Every registered score in the report's column order (``CaptionMetric.report_column``, then registration)."""
    ordered = sorted(METRICS.values(), key=lambda metric: metric.report_column)  # stable: ties keep registration order
    return [score for metric in ordered for score in metric.scores]
