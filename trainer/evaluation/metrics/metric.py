"""What a caption metric is to the rest of the framework: the scores it gives and one function that computes them.

A ``CaptionMetric`` scores tokenized, space-joined captions (``candidates[i]`` against ``references[i]``) and returns
``{score name: (corpus value, per-image values or None)}``, or None when it cannot run here (it logs why). Registered
(``trainer.evaluation.metrics.registry``), it is computed by validation (``val/<name>`` in TensorBoard and the train
log), by ``trainer.evaluate_checkpoint`` (corpus and per image) and shown by the report.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

SCORE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # a results key and a TensorBoard tag part: a plain word

MetricValues = dict[str, tuple[float, Optional[np.ndarray]]]
# (candidates, references, per_image) -> values; per_image False: per-image values may be left out (None)
ComputeScores = Callable[[list[str], list[list[str]], bool], Optional[MetricValues]]


@dataclass(frozen=True)
class Score:
    """One number a metric gives: ``name`` keys results and tags (``val/<name>``), ``label`` heads the report's
    column; ``in_gallery``: the report's gallery shows it on every image and sorts by it."""

    name: str
    label: str
    in_gallery: bool = True


@dataclass(frozen=True)
class CaptionMetric:
    """A metric: its ``scores``, how to ``compute`` them (see the module docstring), its place among the report's
    columns (``report_column``: lower first; papers print BLEU, METEOR, ROUGE-L, CIDEr-D), whether it is
    ``optional`` (needs a runtime that may be absent, e.g. Java: missing, not an error; reference rows leave it out)
    and the report's note (HTML) when its scores are missing."""

    name: str
    scores: tuple[Score, ...]
    compute: ComputeScores
    report_column: int = 100
    optional: bool = False
    missing_note: str = ""

    @property
    def score_names(self) -> tuple[str, ...]:
        return tuple(score.name for score in self.scores)

    def check_values(self, values: MetricValues, num_images: int) -> MetricValues:
        """``values`` if they hold exactly this metric's scores with one per-image value per image, else ValueError."""
        if set(values) != set(self.score_names):
            raise ValueError(f"metric {self.name!r} returned scores {sorted(values)}, expected {list(self.score_names)}")
        for name, (_, per_image) in values.items():
            if per_image is not None and len(per_image) != num_images:
                raise ValueError(f"metric {self.name!r} returned {len(per_image)} per-image {name} values for "
                                 f"{num_images} images")
        return values
