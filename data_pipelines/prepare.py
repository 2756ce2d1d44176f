"""Turn a caption dataset into WebDataset shards: ``python -m data_pipelines.prepare SOURCE ... --out OUT``.

OUT gets ``{split}-NNNNNN.tar`` (``KEY.jpg`` RGB JPEG + ``KEY.json``), ``manifest.json``, ``vocab.json`` (train split
only) and ``stats.json`` (every skipped or converted input and why). Everything is written into a temporary folder
beside OUT and moved into place at the end, so OUT is either the old finished dataset or the new one, never a mix.
Images are decoded/resized/re-encoded in worker processes; results are written in input order, so the output is the
same for any ``--workers``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from .atomic_dir import install_dir, remove_stale_staging, staging_dir
from .duplicates import DuplicateImages, split_conflict_warning
from .image_conversion import WorkerDiedError, converted_images, start_pool
from .mixture_vocab import add_arguments as add_vocab_arguments
from .mixture_vocab import write_mixture_vocabulary
from .output_paths import check_output_apart_from_inputs, check_output_holds_no_file, check_replaceable
from .redact import redact_logs
from .safe_write import write_file
from .shard_writer import ShardWriter
from .sources import SOURCES, DataFormatError, Record, clean_records
from .sources.common import issue
from .sources.image_root import ALLOW_FLAG
from .vocab import Vocabulary, count_words

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = "showattend-shards"
_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


@dataclass
class PrepareOptions:
    image_size: int = 256
    shard_size: int = 1000
    workers: int = 1
    min_word_freq: int = 5
    max_caption_len: int | None = None
    jpeg_quality: int = 95
    seed: int = 0  # order of the train split's samples across shards
    overwrite: bool = False
    copy_small_jpegs: bool = False  # store an upright RGB JPEG within image_size as it came (no re-encoding)

    def __post_init__(self) -> None:
        """Impossible values are refused here, before any image is read (``run`` builds the options first)."""
        for flag, value, least, most in (("--image-size", self.image_size, 1, None),
                                         ("--shard-size", self.shard_size, 1, None), ("--workers", self.workers, 1, None),
                                         ("--min-word-freq", self.min_word_freq, 1, None),
                                         ("--max-caption-len", self.max_caption_len, 1, None),
                                         ("--jpeg-quality", self.jpeg_quality, 1, 100)):
            if value is not None and not (value >= least and (most is None or value <= most)):
                expected = f"between {least} and {most}" if most is not None else f">= {least}"
                raise ValueError(f"{flag} must be {expected}, got {value}")


def _ordered(records: list[Record], seed: int) -> list[Record]:
    """Splits train, val, test, then others; the train split shuffled (seeded) so shards mix the source's order."""
    by_split: dict[str, list[Record]] = {}
    for record in records:
        by_split.setdefault(record.split, []).append(record)
    random.Random(seed).shuffle(by_split.get("train", []))
    return [r for split in sorted(by_split, key=lambda s: (_SPLIT_ORDER.get(s, 3), s)) for r in by_split[split]]


def _check_vocabulary(train_words: Counter, has_train: bool, min_word_freq: int, what: str) -> None:
    """Refuse a vocabulary of nothing but the special tokens when there is a train split (a model would learn to say
    ``<unk>``); a dataset without a train split (for evaluation only) needs no vocabulary."""
    if not has_train or Vocabulary.from_counts(train_words, min_word_freq).num_words:
        return
    if not +train_words:
        raise DataFormatError(f"{what} hold no word (only punctuation or symbols?): the vocabulary would be empty")
    word, count = max((+train_words).items(), key=lambda item: (item[1], item[0]))
    raise DataFormatError(f"--min-word-freq {min_word_freq} leaves no word in the vocabulary: the most frequent "
                          f"word of {what}, {word!r}, appears {count} time(s); lower --min-word-freq")


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        what = "a finished prepared dataset" if (out / "manifest.json").is_file() else "not empty"
        raise FileExistsError(f"{out} already exists and is {what}; pass --overwrite to replace it "
                              "(runs are never mixed into an existing output)")


def _write_json(path: Path, payload: object) -> None:
    write_file(path, json.dumps(payload, ensure_ascii=False, indent=1) + "\n")


def prepare(records: list[Record], reader_issues: list[dict], out: str | Path, options: PrepareOptions,
            source: dict | None = None) -> dict:
    """Write ``records`` as a prepared dataset in ``out``; returns the manifest. ``source`` describes the input."""
    out = Path(out).absolute()
    check_output_holds_no_file(out, (record.image for record in records if isinstance(record.image, str)))
    if options.overwrite:
        check_replaceable(out, MANIFEST_FORMAT, "prepared dataset")
    _check_output(out, options.overwrite)
    records_read = len(records)
    records, skipped, dropped = clean_records(records)
    skipped = list(reader_issues) + skipped
    if not records:
        raise DataFormatError(f"no image with a caption to write ({records_read} read, reasons: "
                              f"{dict(Counter(entry['reason'] for entry in skipped))})")
    if warning := split_conflict_warning(skipped):
        logger.warning(warning)
    records = _ordered(records, options.seed)
    train_words = count_words((c for r in records if r.split == "train" for c in r.captions), options.max_caption_len)
    _check_vocabulary(train_words, any(r.split == "train" for r in records), options.min_word_freq,
                      "the train captions")  # before any image is converted
    remove_stale_staging(out.parent)  # left by a prepare that was killed
    tmp = staging_dir(out)
    writers: dict[str, ShardWriter] = {}
    duplicates = DuplicateImages()
    executor = start_pool(options.workers)
    results = converted_images(records, options, executor)
    try:
        converted = []
        for record, result in tqdm(zip(records, results), total=len(records), unit="img", desc="prepare"):
            if "error" in result:
                details = {"detail": result["detail"]} if result.get("detail") else {}
                skipped.append(issue(record, record.source, result["error"], **details))
                if record.split == "train":  # its captions are not in the dataset: nor in its vocabulary
                    train_words.subtract(count_words(record.captions, options.max_caption_len))
                continue
            duplicates.add(result["sha256"], record.image_id, record.split)
            if result["note"]:
                converted.append(issue(record, record.source, result["note"]))
            if result["orientation"]:
                converted.append(issue(record, record.source, "turned upright (EXIF orientation)",
                                       orientation=result["orientation"]))
            meta = {"image_id": record.image_id, "captions": record.captions, "width": result["width"],
                    "height": result["height"], "source": record.source}
            writer = writers.setdefault(record.split, ShardWriter(tmp, record.split, options.shard_size))
            writer.write(record.image_id, {"jpg": result["jpg"], "json": json.dumps(meta, ensure_ascii=False).encode()},
                         len(record.captions))
        splits = {}
        for split, writer in writers.items():
            shards = writer.close()
            splits[split] = {"shards": [s["name"] for s in shards], "images": sum(s["images"] for s in shards),
                             "captions": sum(s["captions"] for s in shards),
                             "shard_sizes": {s["name"]: s["images"] for s in shards}}
        if not splits:
            raise DataFormatError(f"every image failed to convert (reasons: "
                                  f"{dict(Counter(entry['reason'] for entry in skipped))}); nothing written")
        _check_vocabulary(train_words, "train" in splits, options.min_word_freq,
                          "the train captions of the images that converted")
        vocab = Vocabulary.from_counts(train_words, options.min_word_freq)
        vocab.save(tmp / "vocab.json")
        if warning := duplicates.warning():
            logger.warning(warning)
        reasons = Counter(entry["reason"] for entry in skipped + converted + dropped)
        _write_json(tmp / "stats.json", {
            "records_read": records_read, "written": {split: entry["images"] for split, entry in splits.items()},
            "num_skipped": len(skipped), "num_converted": len(converted), "num_dropped_captions": len(dropped),
            "exif_orientation": "applied: images are stored upright (ImageOps.exif_transpose)",
            "reasons": dict(sorted(reasons.items())),
            "skipped": skipped, "converted": converted, "dropped_captions": dropped,
            "duplicate_images": duplicates.stats()})
        manifest = {"format": MANIFEST_FORMAT, "version": 1, "source": source or {}, "image_size": options.image_size,
                    "jpeg_quality": options.jpeg_quality, "shard_size": options.shard_size,
                    "min_word_freq": options.min_word_freq, "max_caption_len": options.max_caption_len,
                    "vocab_size": len(vocab), "splits": splits}
        _write_json(tmp / "manifest.json", manifest)
        _check_output(out, options.overwrite)  # again: another run may have finished meanwhile
        install_dir(tmp, out)
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # first: closing a shard on a full disk may fail too
        for writer in writers.values():
            with contextlib.suppress(OSError):
                writer.abort()
        raise
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, type=Path, help="output folder (must not exist unless --overwrite)")
    common.add_argument("--image-size", type=int, default=256, help="shorter image side in pixels (default 256)")
    common.add_argument("--shard-size", type=int, default=1000, help="samples per tar shard (default 1000)")
    common.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="image-converting processes")
    common.add_argument("--min-word-freq", type=int, default=5, help="vocabulary: min train count of a word")
    common.add_argument("--max-caption-len", type=int, default=None,
                        help="vocabulary: count only the first N words of each caption (the loader's cap)")
    common.add_argument("--jpeg-quality", type=int, default=95, help="quality of the re-encoded JPEGs")
    common.add_argument("--copy-small-jpegs", action=argparse.BooleanOptionalAction, default=None,
                        help="store an upright RGB JPEG already within --image-size as it came, not re-encoded "
                             "(default: on for the webdataset source, off for the others)")
    common.add_argument("--seed", type=int, default=0, help="seed of the train split's sample order")
    common.add_argument("--overwrite", action="store_true", help="replace an existing OUT (atomically, at the end)")
    common.add_argument(ALLOW_FLAG, action="store_true",
                        help="read image paths that lead outside the image folder (absolute, '..', symlinks out of "
                             "it); refused by default")
    parser = argparse.ArgumentParser(prog="python -m data_pipelines.prepare",
                                     description="Turn a caption dataset into WebDataset shards + manifest + vocab.")
    subparsers = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for name, source in SOURCES.items():
        source.add_arguments(subparsers.add_parser(name, parents=[common], help=source.help))
    add_vocab_arguments(subparsers.add_parser("vocab", help="one vocabulary of several prepared datasets' train "
                                              "captions, for a mixture (data.vocab)"))
    return parser


def copy_small_jpegs(args: argparse.Namespace) -> bool:
    """``--copy-small-jpegs`` as given, else the source's default (``Source.copy_small_jpegs``)."""
    if args.copy_small_jpegs is not None:
        return args.copy_small_jpegs
    return SOURCES[args.source].copy_small_jpegs


def run(argv: Iterable[str] | None = None) -> dict:
    """Parse arguments, read the source, prepare (or write a mixture's vocabulary); errors propagate (see ``main``
    for the CLI behaviour)."""
    args = build_parser().parse_args(None if argv is None else [str(arg) for arg in argv])
    if args.source == "vocab":
        vocab = write_mixture_vocabulary(args)
        return {"vocab_size": len(vocab), "splits": {}, "vocab_file": str(args.out)}
    options = PrepareOptions(args.image_size, args.shard_size, args.workers, args.min_word_freq, args.max_caption_len,
                             args.jpeg_quality, args.seed, args.overwrite, copy_small_jpegs(args))
    check_output_apart_from_inputs(args.out, SOURCES[args.source].input_paths(args))  # fail before a long read
    _check_output(args.out.absolute(), args.overwrite)
    common = {"out", "image_size", "shard_size", "workers", "min_word_freq", "max_caption_len", "jpeg_quality", "seed",
              "overwrite", "source", "allow_images_outside", "copy_small_jpegs"}
    inputs = {key: (str(value) if isinstance(value, Path) else value)
              for key, value in vars(args).items() if key not in common}
    records, issues = SOURCES[args.source].read(args)
    return prepare(records, issues, args.out, options, source={"kind": args.source, **inputs})


def main(argv: Iterable[str] | None = None) -> None:
    logging.basicConfig(format="%(levelname)s: %(message)s")
    redact_logs()
    try:
        manifest = run(argv)
    except (ValueError, OSError, WorkerDiedError) as error:  # bad input, full disk, a killed worker: OUT as it was
        sys.exit(f"error: {error}")
    if "vocab_file" in manifest:
        print(f"wrote {manifest['vocab_file']}: vocabulary {manifest['vocab_size']} words")
        return
    counts = ", ".join(f"{split} {entry['images']} images / {len(entry['shards'])} shards"
                       for split, entry in manifest["splits"].items())
    print(f"prepared {counts}; vocabulary {manifest['vocab_size']} words")


if __name__ == "__main__":
    main()
