"""CSV / JSON-lines reader: an image-path column and one or more caption columns; rows of one image are merged."""
from __future__ import annotations

import argparse
import csv
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

from .common import (
    DataFormatError,
    Record,
    as_caption_list,
    check_split_name,
    image_id_or,
    jsonl_objects,
)
from .fraction_splits import add_fraction_arguments, assign_fraction_splits
from .image_root import ImageRoot
from .source import Source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", required=True, type=Path, help="the .csv (with a header row) or .jsonl file")
    parser.add_argument("--image-column", default="image", help="column holding the image path (default: image)")
    parser.add_argument("--caption-columns", nargs="+", default=["caption"],
                        help="column(s) holding captions; a JSONL cell may also be a list of captions")
    parser.add_argument("--split-column", default=None, help="column holding train/val/test (else fractions)")
    parser.add_argument("--id-column", default=None, help="column holding the image id (else the image path)")
    parser.add_argument("--images", type=Path, default=None,
                        help="folder that relative image paths start from (default: the file's folder)")
    add_fraction_arguments(parser)


def input_paths(args: argparse.Namespace) -> dict[str, list[Path]]:
    """Files and folders this source reads, by flag (``--out`` must stay apart from them)."""
    return {"--file": [args.file], "--images": [args.images if args.images is not None else args.file.parent]}


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: a byte-order mark (Excel) is not a column name
        reader = csv.DictReader(handle)
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as error:
            raise DataFormatError(f"{path}: line {reader.line_num}: {error}") from None


def _cell(row: dict[str, Any], column: str, path: Path, line: int) -> Any:
    if column not in row:
        raise DataFormatError(f"{path}: line {line}: no column {column!r} (columns: {', '.join(map(str, row))})")
    return row[column]


def read(args: argparse.Namespace, rows_of: Callable[[Path], Iterator[tuple[int, dict[str, Any]]]]
         ) -> tuple[list[Record], list[dict]]:
    """Group the rows (``rows_of(file)``: line number and row) by image path; each row adds its caption cells.
    Relative paths start at --images or the file's folder."""
    path: Path = args.file
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    base = ImageRoot(args.images if args.images is not None else path.parent, args.allow_images_outside)
    rows = rows_of(path)
    records: dict[str, Record] = {}
    try:
        for line, row in rows:
            image = _cell(row, args.image_column, path, line)
            if not isinstance(image, str) or not image.strip():
                raise DataFormatError(f"{path}: line {line}: column {args.image_column!r} must be a non-empty path, "
                                      f"got {image!r:.60}")
            captions = []
            for column in args.caption_columns:
                captions += as_caption_list(_cell(row, column, path, line), f"{path}: line {line}: column {column!r}")
            split = ""
            if args.split_column:
                split = check_split_name(_cell(row, args.split_column, path, line),
                                         f"{path}: line {line}: column {args.split_column!r}")
            image_id = image_id_or(_cell(row, args.id_column, path, line) if args.id_column else None,
                                   str(Path(image).with_suffix("")))
            record = records.get(image)
            if record is None:
                image_path = base.resolve(image, f"{path}: line {line}: column {args.image_column!r}")
                records[image] = Record(image_id, split, captions, image_path, image_path)
            elif record.split != split or record.image_id != image_id:
                raise DataFormatError(f"{path}: line {line}: image {image!r} was given split/id "
                                      f"{record.split!r}/{record.image_id!r} on an earlier row, now {split!r}/{image_id!r}")
            else:
                record.captions += captions
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    if not args.split_column:
        splits = assign_fraction_splits(list(records), args.val_fraction, args.test_fraction)
        for image, record in records.items():
            record.split = splits[image]
    return list(records.values()), []


CSV = Source("CSV with image-path and caption columns", add_arguments, input_paths, partial(read, rows_of=_csv_rows))
JSONL = Source("JSON lines with image-path and caption fields", add_arguments, input_paths,
               partial(read, rows_of=jsonl_objects))
