"""COCO results files (``[{"image_id": ..., "caption": ...}, ...]``): the id convention and a checked reader."""
from __future__ import annotations

import json
from pathlib import Path


def results_image_id(image_id: str):
    """COCO results use integer ids: an id that is an integer written plainly ("7", not "007") becomes an int, others
    stay strings, so two ids never map to one (``str`` of the result is the id again)."""
    plain = isinstance(image_id, str) and image_id.isascii() and image_id.isdigit() and str(int(image_id)) == image_id
    return int(image_id) if plain else image_id


def read_results(path: Path) -> dict[str, str]:
    """str(image_id) -> caption of a COCO results JSON ([{"image_id", "caption", ...}, ...]; ids as
    ``results_image_id`` writes them)."""
    try:
        rows = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON ({error})") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) and {"image_id", "caption"} <= set(row)
                                             for row in rows):
        raise ValueError(f'{path} is not a COCO results list: expected [{{"image_id": ..., "caption": ...}}, ...]')
    return {str(row["image_id"]): row["caption"] for row in rows}
