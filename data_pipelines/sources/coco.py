"""COCO captions reader (annotations/captions_{train,val}{2014,2017}.json), one or more files mapped to splits."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    DataFormatError,
    Record,
    check_split_name,
    issue,
    load_json,
    parse_mapping,
    require,
)
from .fraction_splits import add_fraction_arguments, assign_fraction_splits
from .image_root import ImageRoot
from .source import Source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", nargs="+", required=True, metavar="[SPLIT=]FILE",
                        help="caption files, e.g. train=captions_train2017.json val=captions_val2017.json; files "
                             "without SPLIT= are split by --val-fraction/--test-fraction")
    parser.add_argument("--images", nargs="+", required=True, metavar="[SPLIT=]DIR",
                        help="image folder(s): one DIR for all files, or SPLIT=DIR matching --annotations")
    add_fraction_arguments(parser)


def input_paths(args: argparse.Namespace) -> dict[str, list[Path]]:
    """Files and folders this source reads, by flag (``--out`` must stay apart from them)."""
    return {"--annotations": [Path(v) for v in parse_mapping(args.annotations, "--annotations").values()],
            "--images": [Path(v) for v in parse_mapping(args.images, "--images").values()]}


def _read_file(path: Path, label: str | None, image_dir: ImageRoot) -> tuple[list[Record], list[dict]]:
    data = load_json(path)
    images = require(data, "images", list, path, "the top level")
    annotations = require(data, "annotations", list, path, "the top level")
    split = check_split_name(label, f"--annotations {label}={path}") if label else ""
    records: dict[str, Record] = {}
    for index, entry in enumerate(images):
        image_id = str(require(entry, "id", (int, str), path, f"images[{index}]"))
        file_name = require(entry, "file_name", str, path, f"images[{index}]")
        if image_id in records:
            raise DataFormatError(f"{path}: images[{index}] repeats id {image_id}")
        image_path = image_dir.resolve(file_name, f"{path}: images[{index}]")
        records[image_id] = Record(image_id, split, [], image_path, image_path)
    issues = []
    for index, entry in enumerate(annotations):
        where = f"annotations[{index}]"
        image_id = str(require(entry, "image_id", (int, str), path, where))
        caption = require(entry, "caption", str, path, where)
        if image_id not in records:
            issues.append(issue(image_id, f"{path}:{where}", "caption refers to an image id not in 'images'"))
            continue
        records[image_id].captions.append(caption)
    return list(records.values()), issues


def read(args: argparse.Namespace) -> tuple[list[Record], list[dict]]:
    """Records per annotation file (named files keep their split; unnamed ones get a deterministic fraction split)."""
    files = parse_mapping(args.annotations, "--annotations")
    folders = parse_mapping(args.images, "--images")
    records, issues = [], []
    for label, file_name in files.items():
        folder = folders.get(label, folders.get(None))
        if folder is None:
            raise DataFormatError(f"--images has no folder for {'split ' + repr(label) if label else 'unnamed files'} "
                                  f"(given: {', '.join(args.images)}); pass {label + '=' if label else ''}DIR")
        file_records, file_issues = _read_file(Path(file_name), label, ImageRoot(folder, args.allow_images_outside))
        records += file_records
        issues += file_issues
    unnamed = [record for record in records if not record.split]
    if unnamed:
        splits = assign_fraction_splits([r.image_id for r in unnamed], args.val_fraction, args.test_fraction)
        for record in unnamed:
            record.split = splits[record.image_id]
    return records, issues


SOURCE = Source("COCO captions JSON file(s) (captions_train2017.json ...)", add_arguments, input_paths, read)
