"""The record every source reader produces, plus the helpers they share (errors, key cleaning, captions, issues)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Union

# A file path, encoded image bytes, or a zero-argument callable returning either (resolved lazily in the main process,
# so a large in-memory dataset is never held all at once).
ImageRef = Union[str, bytes, Callable[[], Union[str, bytes]]]

_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class DataFormatError(ValueError):
    """An annotation file (or its flags) is malformed; the message names the file and position/key."""


@dataclass
class Record:
    """One image with its raw captions, as read from any source format."""

    image_id: str          # stable id used in manifests and evaluation (no dots; see ``clean_key``)
    split: str             # train / val / test (or another lowercase split name)
    captions: list[str]    # raw captions as people wrote them
    image: ImageRef
    source: str            # where the image came from (path or dataset row), for stats and the sample json


def clean_key(image_id: Any) -> str:
    """Make an id safe as a WebDataset key: no dots (webdataset splits keys at the first dot), no slashes."""
    key = _UNSAFE_KEY_CHARS.sub("_", str(image_id).strip())
    return key or "_"


def image_id_or(value: Any, fallback: str) -> str:
    """``value`` as an id, or ``fallback`` (e.g. the file name) when it is missing: None or blank. A missing id never
    becomes the string "None" that every image would share."""
    return fallback if value is None or not str(value).strip() else str(value)


def check_split_name(split: str, where: str) -> str:
    """Return the split name, mapping ``restval`` to ``train``; error on names that would make odd shard file names."""
    split = "train" if split == "restval" else split
    if not isinstance(split, str) or not _SPLIT_NAME.match(split):
        raise DataFormatError(f"{where}: split {split!r} is not a lowercase name like train/val/test")
    return split


def parse_mapping(values: list[str], flag: str) -> dict[str | None, str]:
    """Parse ``['train=a.json', 'val=b.json']`` (or a single unnamed ``['a.json']``) into ``{label: value}``."""
    mapping: dict[str | None, str] = {}
    for value in values:
        label, sep, target = value.partition("=")
        key = label if sep and _SPLIT_NAME.match(label) else None
        target = target if key is not None else value
        if key in mapping:
            raise DataFormatError(f"{flag}: {'split ' + repr(key) if key else 'an unnamed value'} is given twice")
        mapping[key] = target
    return mapping


def load_json(path: Path) -> Any:
    """Read a JSON file; a missing file or a syntax error raises DataFormatError naming file, line and column."""
    if not path.is_file():
        raise DataFormatError(f"{path}: annotation file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None


def require(container: Any, key: str, expected: type | tuple[type, ...], path: Path, where: str) -> Any:
    """``container[key]`` checked for presence and type; errors name file, position (``where``) and key."""
    if not isinstance(container, dict):
        raise DataFormatError(f"{path}: {where} must be a JSON object, got {type(container).__name__}")
    if key not in container:
        raise DataFormatError(f"{path}: {where} has no key {key!r} (keys: {', '.join(map(str, container)) or 'none'})")
    value = container[key]
    if not isinstance(value, expected):
        names = "/".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        raise DataFormatError(f"{path}: {where}[{key!r}] must be {names}, got {type(value).__name__} {value!r:.60}")
    return value


def as_caption_list(value: Any, where: str) -> list[str]:
    """A caption cell: a string, a list of strings, or empty/None (no captions). Other types are a format error."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) or item is None for item in value):
        return [item or "" for item in value]
    raise DataFormatError(f"{where}: caption must be a string or a list of strings, got {type(value).__name__} "
                          f"{value!r:.60}")


def issue(record_or_id: Record | str, source: str, reason: str, **extra: Any) -> dict[str, Any]:
    """One stats.json entry: ``reason`` is a fixed phrase (counted in the summary), details go in ``extra``."""
    if isinstance(record_or_id, Record):
        return {"image_id": record_or_id.image_id, "split": record_or_id.split, "source": source, "reason": reason,
                **extra}
    return {"image_id": record_or_id, "source": source, "reason": reason, **extra}


def _check_unicode(record: Record, index: int, caption: str) -> None:
    """A caption must encode as UTF-8: JSON escapes like "\\ud800" decode to lone surrogates that cannot be written."""
    try:
        caption.encode("utf-8")
    except UnicodeEncodeError as error:
        raise DataFormatError(f"{record.source}: image {record.image_id!r}, caption {index}: character "
                              f"{caption[error.start]!r} at position {error.start} is a lone surrogate, not valid "
                              f"Unicode (a broken \\uXXXX escape?): {caption!r:.80}") from None


def clean_records(records: list[Record]) -> tuple[list[Record], list[dict], list[dict]]:
    """Drop empty captions, skip images left without captions and images listed twice.

    Two different images (sources) with the same key, or a caption that is not valid Unicode, is a DataFormatError:
    dropping one of them would silently lose data. Returns (kept records, skipped-image entries, dropped-caption
    entries) for stats.json."""
    kept, skipped, dropped, seen = [], [], [], {}
    for record in records:
        record.image_id = clean_key(record.image_id)
        captions = []
        for index, caption in enumerate(record.captions):
            _check_unicode(record, index, caption)
            if caption.strip():
                captions.append(caption)
            else:
                dropped.append(issue(record, record.source, "empty caption", caption_index=index))
        record.captions = captions
        if not captions:
            skipped.append(issue(record, record.source, "no captions"))
        elif record.image_id in seen and seen[record.image_id].source != record.source:
            raise DataFormatError(f"image id {record.image_id!r} is given to two different images: "
                                  f"{seen[record.image_id].source} and {record.source}; image ids must be unique")
        elif record.image_id in seen:
            first = seen[record.image_id]
            skipped.append(issue(record, record.source, "duplicate image_id", first_seen=first.source,
                                 first_split=first.split))
        else:
            seen[record.image_id] = record
            kept.append(record)
    return kept, skipped, dropped


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file; DataFormatError names the bad line."""
    with path.open(encoding="utf-8-sig") as handle:  # -sig: a leading byte-order mark is not part of line 1
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataFormatError(f"{path}: line {number}, column {error.colno}: invalid JSON: {error.msg}") from None
            if not isinstance(row, dict):
                raise DataFormatError(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
            yield number, row
