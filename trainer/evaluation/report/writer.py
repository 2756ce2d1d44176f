"""Write the static report of an evaluation: summary table, learning curves, gallery; no server, no network."""
from __future__ import annotations

import logging
import time
from html import escape
from pathlib import Path

from data_pipelines.safe_write import write_file
from trainer.evaluation.caption_baselines import caption_baselines
from trainer.evaluation.metrics import METRICS
from trainer.evaluation.report.curves import plot_learning_curves
from trainer.evaluation.report.gallery import CaptionedImage, gallery_settings, write_gallery
from trainer.evaluation.report.page import curves_html, render_page
from trainer.evaluation.report.shard_images import split_images
from trainer.evaluation.report.summary import summary_rows, summary_table_html
from trainer.evaluation.report.train_log import find_train_log, read_train_log

logger = logging.getLogger(__name__)

PAGE_NAME = "index.html"
CURVES_NAME = "curves.png"


def split_baselines(data: Path, split: str) -> dict | None:
    """Blind and human metrics of the split (trainer.baselines), or None with a logged reason when the dataset has
    no train split to take the blind caption from."""
    try:
        return caption_baselines(data, split)
    except (ValueError, KeyError) as error:
        logger.warning("report: no baseline rows (%s)", error)
        return None


def write_report(out_dir: Path, *, checkpoint: Path, data: Path, split: str, metrics: dict,
                 items: list[CaptionedImage], grid_size: int, image_size: int, train_log: Path | None = None,
                 baselines: dict | None = None) -> Path:
    """Write ``out_dir/index.html`` with ``curves.png``, ``images/`` and ``attention/`` beside it; return its path.

    ``items`` are the evaluated images (scores per image, attention per word); their pictures are read from ``split``
    of the prepared dataset ``data``. ``train_log`` defaults to the checkpoint's run log (``find_train_log``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_log = train_log or find_train_log(Path(checkpoint))
    curves_file, log_problem = None, None
    try:
        if train_log is not None and plot_learning_curves(read_train_log(train_log), out_dir / CURVES_NAME):
            curves_file = CURVES_NAME
    except ValueError as error:  # a corrupt log costs the curves, not the report of an evaluation already done
        log_problem = str(error)
        logger.warning("report: no learning curves: %s", error)
    images = split_images(data, split, [str(item.image_id) for item in items])
    records = write_gallery(out_dir, items, images, grid_size, image_size)
    summary = summary_table_html(summary_rows(metrics, baselines))
    if baselines and baselines.get("blind_caption"):
        summary += f'<p class="note">Blind caption: &ldquo;{escape(baselines["blind_caption"])}&rdquo;.</p>'
    summary += "".join(f'<p class="note">{escape(note)}.</p>' for note in (baselines or {}).get("notes", []))
    summary += "".join(f'<p class="note">{metric.missing_note}.</p>' for metric in METRICS.values()
                       if metric.missing_note and not set(metric.score_names) & set(metrics))
    subtitle = (f"checkpoint {checkpoint} \u00b7 split {split!r} of {data} \u00b7 {len(items)} images \u00b7 "
                f"written {time.strftime('%Y-%m-%d %H:%M')}")
    curves = curves_html(curves_file, train_log, log_problem)
    page = render_page("Captioning report", subtitle, summary, curves, records, gallery_settings(records))
    path = out_dir / PAGE_NAME
    return write_file(path, page)


def write_evaluation_report(out_dir: Path, *, checkpoint: Path, data: Path, split: str, predictions: dict,
                            references: dict, scores, attention: dict, grid_size: int, image_size: int) -> Path:
    """``write_report`` for ``trainer.evaluate_checkpoint``: ``scores`` is its ``CaptionScores``, ``attention`` maps an image id
    to the (words, regions) attention of its caption; the baseline rows are computed on the same split."""
    items = [CaptionedImage(image_id, predictions[image_id], references[image_id], scores.per_image[image_id],
                            attention.get(image_id)) for image_id in predictions]
    return write_report(out_dir, checkpoint=checkpoint, data=data, split=split, metrics=scores.metrics, items=items,
                        grid_size=grid_size, image_size=image_size, baselines=split_baselines(data, split))
