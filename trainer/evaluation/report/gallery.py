"""Gallery material: each test image and its attention strip as files, and one record per image for the page."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from data_pipelines.safe_write import replaced_on_success
from trainer.evaluation.attention_maps import crop_like_model
from trainer.evaluation.metrics import PRIMARY_SCORE, report_scores
from trainer.evaluation.report.attention_strip import PANEL_SIDE, attention_strip

IMAGE_DIR, STRIP_DIR = "images", "attention"
JPEG_QUALITY = 85


@dataclass
class CaptionedImage:
    """One evaluated image: our caption, its references, its scores and the attention of each caption word."""

    image_id: str | int
    caption: str
    references: list[str]
    scores: dict[str, float]
    alphas: np.ndarray | None = None  # (caption words, grid_size ** 2); None when not recorded


def write_gallery(out_dir: Path, items: list[CaptionedImage], images: Iterable[tuple[str, Image.Image]],
                  grid_size: int, image_size: int) -> list[dict]:
    """Write ``images/N.jpg`` (what the model saw) and ``attention/N.jpg`` (strip) under ``out_dir`` for every item
    whose image ``images`` yields; return the page records in ``items`` order (paths relative to ``out_dir``)."""
    (out_dir / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    (out_dir / STRIP_DIR).mkdir(parents=True, exist_ok=True)
    index_of = {str(item.image_id): index for index, item in enumerate(items)}
    records = [{"id": str(item.image_id), "caption": item.caption, "refs": list(item.references),
                "scores": {name: round(value, 4) for name, value in item.scores.items()},
                "words": item.caption.split()[:len(item.alphas)] if item.alphas is not None else [],
                "image": None, "strip": None} for item in items]
    for image_id, image in images:
        index = index_of.get(str(image_id))
        if index is None or records[index]["image"] is not None:
            continue
        crop = crop_like_model(image, image_size)
        name = f"{index:06d}.jpg"
        with replaced_on_success(out_dir / IMAGE_DIR / name) as temporary:
            crop.save(temporary, format="JPEG", quality=JPEG_QUALITY)
        records[index]["image"] = f"{IMAGE_DIR}/{name}"
        if items[index].alphas is not None and len(records[index]["words"]):
            strip = attention_strip(crop, items[index].alphas[:len(records[index]["words"])], grid_size)
            with replaced_on_success(out_dir / STRIP_DIR / name) as temporary:
                strip.save(temporary, format="JPEG", quality=JPEG_QUALITY)
            records[index]["strip"] = f"{STRIP_DIR}/{name}"
    return records


def gallery_settings(records: list[dict]) -> dict:
    """What the page script needs besides the records: the panel size, the score names it shows and sorts by (the
    primary score first, then the report's column order) and their labels."""
    shown = [score for score in report_scores() if score.in_gallery and records and score.name in records[0]["scores"]]
    shown.sort(key=lambda score: score.name != PRIMARY_SCORE)  # stable: the others keep their order
    return {"panel": PANEL_SIDE, "scores": [score.name for score in shown],
            "labels": {score.name: score.label for score in shown}}
