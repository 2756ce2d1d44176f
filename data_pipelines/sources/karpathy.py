"""Karpathy split JSON (dataset_coco.json / dataset_flickr8k.json / dataset_flickr30k.json) reader."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import DataFormatError, Record, check_split_name, image_id_or, load_json, require
from .image_root import ImageRoot
from .source import Source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", required=True, type=Path, help="Karpathy split file, e.g. dataset_coco.json")
    parser.add_argument("--images", type=Path, default=None,
                        help="image root: images live at ROOT/filepath/filename (default: the JSON's folder)")


def input_paths(args: argparse.Namespace) -> dict[str, list[Path]]:
    """Files and folders this source reads, by flag (``--out`` must stay apart from them)."""
    return {"--json": [args.json], "--images": [args.images if args.images is not None else args.json.parent]}


def read(args: argparse.Namespace) -> tuple[list[Record], list[dict]]:
    """One record per ``images[]`` entry; ``restval`` goes to train; id = ``cocoid`` if present and not null, else file stem."""
    path: Path = args.json
    root: Path = args.images if args.images is not None else path.parent
    image_root = ImageRoot(root, args.allow_images_outside)
    data = load_json(path)
    images = require(data, "images", list, path, "the top level")
    records = []
    for index, entry in enumerate(images):
        where = f"images[{index}]"
        filename = require(entry, "filename", str, path, where)
        folder = entry.get("filepath", "") or ""
        if not isinstance(folder, str):
            raise DataFormatError(f"{path}: {where}['filepath'] must be str, got {type(folder).__name__}")
        split = check_split_name(require(entry, "split", str, path, where), f"{path}: {where}['split']")
        sentences = require(entry, "sentences", list, path, where)
        captions = [require(sentence, "raw", str, path, f"{where}['sentences'][{number}]")
                    for number, sentence in enumerate(sentences)]
        image_id = image_id_or(entry.get("cocoid"), Path(filename).stem)
        image_path = image_root.resolve(str(Path(folder) / filename), f"{path}: {where}")
        records.append(Record(image_id, split, captions, image_path, image_path))
    return records, []


SOURCE = Source("Karpathy split JSON (dataset_coco.json, dataset_flickr8k.json, dataset_flickr30k.json)", add_arguments,
                input_paths, read)
