"""img2dataset-style WebDataset shards: ``KEY.jpg|.jpeg|.png|.webp`` with ``KEY.txt`` and/or ``KEY.json``.

    python -m data_pipelines.prepare webdataset --shards 'DIR_OR_URL/{00000..00099}.tar' --out OUT

The brace pattern is expanded here (``{00000..00099}`` ranges keep their zero padding, ``{a,b}`` lists), never by a
shell. Member names are untrusted: only regular files count, a name is split into key and extension and never used as
a path; the key becomes the image id through ``clean_key``. The caption is the ``.txt`` text, else the ``.json``
``caption``; a ``.json`` whose ``status`` is not ``"success"`` (img2dataset's failed downloads) is skipped, like a
sample without an image, and every skip is listed in stats.json. Splits come from a stable hash of the key
(``--val-fraction`` / ``--test-fraction``, default 0.01 each), so adding shards never moves a sample between splits.

Images are not held in memory: a record remembers its member's byte range and reads it when prepare converts it.
Remote shards (``data_pipelines.data_root``) are streamed once into a temporary folder for that, removed at exit.
"""
from __future__ import annotations

import argparse
import atexit
import hashlib
import itertools
import json
import re
import shutil
import tarfile
import tempfile
from functools import partial
from pathlib import Path

from ..data_root import is_remote, open_location
from .common import DataFormatError, Record, issue
from .source import Source

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
MAX_SHARDS = 1_000_000
_BRACE = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shards", required=True,
                        help="shard paths or URLs with brace expansion, e.g. 'data/{00000..00099}.tar'")
    parser.add_argument("--val-fraction", type=float, default=0.01, help="share of keys in val (default 0.01)")
    parser.add_argument("--test-fraction", type=float, default=0.01, help="share of keys in test (default 0.01)")


def expand_braces(pattern: str) -> list[str]:
    """``'a/{000..002}.tar'`` -> ``['a/000.tar', 'a/001.tar', 'a/002.tar']``; ``{x,y}`` lists; several braces
    combine. A malformed or too large pattern is a DataFormatError."""
    parts, choices, position = [], [], 0
    for match in _BRACE.finditer(pattern):
        parts.append(pattern[position:match.start()])
        body, position = match.group(1), match.end()
        numbers = _RANGE.match(body)
        if numbers:
            first, last = numbers.groups()
            if int(last) < int(first):
                raise DataFormatError(f"--shards {pattern!r}: range {{{body}}} runs backwards")
            width = len(first) if first.startswith("0") or len(first) == len(last) else 0
            choices.append(_NumberNames(range(int(first), int(last) + 1), width))  # counted before it is listed
        elif "," in body:
            choices.append(body.split(","))
        else:
            raise DataFormatError(f"--shards {pattern!r}: {{{body}}} is neither a range N..M nor a list a,b")
    parts.append(pattern[position:])
    if any("{" in part or "}" in part for part in parts):
        raise DataFormatError(f"--shards {pattern!r}: unbalanced or nested braces")
    total = 1
    for options in choices:
        total *= len(options)
    if total > MAX_SHARDS:
        raise DataFormatError(f"--shards {pattern!r} expands to {total} names (at most {MAX_SHARDS})")
    return ["".join(p + c for p, c in zip(parts, combo)) + parts[-1] for combo in itertools.product(*choices)]


class _NumberNames:
    """The names of a ``{first..last}`` range, zero-padded to ``width``: its length is known without listing it."""

    def __init__(self, numbers: range, width: int):
        self.numbers, self.width = numbers, width

    def __len__(self) -> int:
        return len(self.numbers)

    def __iter__(self):
        return (str(number).zfill(self.width) for number in self.numbers)


def hash_split(key: str, val_fraction: float, test_fraction: float) -> str:
    """train / val / test from the key alone (sha1 as a number in [0, 1))."""
    share = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:15], 16) / 16 ** 15
    return "val" if share < val_fraction else "test" if share < val_fraction + test_fraction else "train"


def _read_range(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


_spool: list[str] = []


def _local_copy(location: str) -> str:
    """A local file holding the remote shard ``location`` (streamed into a temporary folder removed at exit)."""
    if not _spool:
        _spool.append(tempfile.mkdtemp(prefix="showattend-webdataset-"))
        atexit.register(shutil.rmtree, _spool[0], True)
    descriptor, target = tempfile.mkstemp(suffix=".tar", dir=_spool[0])
    with open_location(location) as source, open(descriptor, "wb") as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
    return target


def _split_name(name: str) -> tuple[str, str] | None:
    """(key, lowercased extension) of a member name, as webdataset groups them: the key ends at the first dot of
    the last path part. None for names without an extension."""
    folder, _, base = name.rpartition("/")
    stem, dot, extension = base.partition(".")
    if not dot or not stem:
        return None
    return (f"{folder}/{stem}" if folder else stem), extension.lower()


def _caption(members: dict, shard: str, key: str, skipped: list) -> list[str] | None:
    """The sample's captions, or None (with a stats entry) when it must be skipped."""
    where = f"{shard}:{key}"
    meta = {}
    if "json" in members:
        try:
            meta = json.loads(members["json"])
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            skipped.append(issue(key, where, "unreadable .json", detail=str(error)))
            return None
        if not isinstance(meta, dict):
            skipped.append(issue(key, where, "unreadable .json", detail="not a JSON object"))
            return None
        if "status" in meta and meta["status"] != "success":
            skipped.append(issue(key, where, "download status not success", status=str(meta["status"])[:200]))
            return None
    if "txt" in members:
        try:
            return [members["txt"].decode("utf-8").strip()]
        except UnicodeDecodeError as error:
            skipped.append(issue(key, where, "caption .txt is not UTF-8", detail=str(error)))
            return None
    caption = meta.get("caption")
    if isinstance(caption, str):
        return [caption]
    skipped.append(issue(key, where, "no caption (.txt or .json 'caption')"))
    return None


def _shard_records(location: str, args: argparse.Namespace, skipped: list) -> list[Record]:
    path = _local_copy(location) if is_remote(location) else location
    if not Path(path).is_file():
        raise DataFormatError(f"{location}: shard not found")
    records, groups, current, repeated = [], {}, None, False
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                parts = _split_name(member.name) if member.isfile() else None
                if parts is None:
                    continue
                key, extension = parts
                slot = "image" if extension in IMAGE_EXTENSIONS else extension
                if (key != current and key in groups) or (key == current and not repeated and slot in groups[key]):
                    # a second sample under a key already read: it would take the first one's caption
                    skipped.append(issue(key, f"{location}:{key}", "key repeated in the shard: the later sample is "
                                                                   "skipped"))
                    current, repeated = key, True
                    continue
                if key != current:
                    current, repeated = key, False
                if repeated:
                    continue
                group = groups.setdefault(key, {})
                if extension in IMAGE_EXTENSIONS:
                    group["image"] = (member.offset_data, member.size)
                elif extension in ("txt", "json") and member.size <= 1 << 20:
                    group[extension] = tar.extractfile(member).read()
    except tarfile.TarError as error:
        raise DataFormatError(f"{location}: not a readable tar file ({error})") from None
    for key, members in groups.items():
        captions = _caption(members, location, key, skipped)
        if captions is None:
            continue
        if "image" not in members:
            skipped.append(issue(key, f"{location}:{key}", f"no image member (.{' / .'.join(IMAGE_EXTENSIONS)})"))
            continue
        split = hash_split(key, args.val_fraction, args.test_fraction)
        records.append(Record(key, split, captions, partial(_read_range, path, *members["image"]), f"{location}:{key}"))
    return records


def input_paths(args: argparse.Namespace) -> dict[str, list[Path]]:
    """Local shard files this source reads (``--out`` must stay apart from them)."""
    return {"--shards": [Path(name) for name in expand_braces(args.shards) if not is_remote(name)]}


def read(args: argparse.Namespace) -> tuple[list[Record], list[dict]]:
    if not (0 <= args.val_fraction and 0 <= args.test_fraction and args.val_fraction + args.test_fraction < 1):
        raise DataFormatError(f"--val-fraction {args.val_fraction} and --test-fraction {args.test_fraction} must be "
                              f">= 0 and sum to less than 1")
    records, skipped = [], []
    for location in expand_braces(args.shards):
        records += _shard_records(location, args, skipped)
    return records, skipped


# --copy-small-jpegs by default: web images are JPEGs, spare them a second loss
SOURCE = Source("img2dataset-style WebDataset shards (KEY.jpg/.png/.webp + KEY.txt/.json)", add_arguments, input_paths,
                read, copy_small_jpegs=True)
