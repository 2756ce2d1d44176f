"""Flickr8k / Flickr30k reader: ``IMAGE#N<TAB>caption`` token file plus one image-list file per split."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import DataFormatError, Record, check_split_name, issue, parse_mapping
from .fraction_splits import add_fraction_arguments, assign_fraction_splits
from .image_root import ImageRoot
from .source import Source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--captions", required=True, type=Path,
                        help="token file: Flickr8k.token.txt or Flickr30k results_20130124.token")
    parser.add_argument("--images", required=True, type=Path, help="folder holding the image files")
    parser.add_argument("--splits", nargs="*", default=[], metavar="SPLIT=FILE",
                        help="split lists, e.g. train=Flickr_8k.trainImages.txt val=Flickr_8k.devImages.txt "
                             "test=Flickr_8k.testImages.txt; without them --val-fraction/--test-fraction split")
    add_fraction_arguments(parser)


def input_paths(args: argparse.Namespace) -> dict[str, list[Path]]:
    """Files and folders this source reads, by flag (``--out`` must stay apart from them)."""
    return {"--captions": [args.captions], "--images": [args.images],
            "--splits": [Path(v) for v in parse_mapping(args.splits, "--splits").values()]}


def _read_text(path: Path) -> list[str]:
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None


def _read_captions(path: Path) -> dict[str, list[str]]:
    """File name -> captions in file order."""
    captions: dict[str, list[str]] = {}
    for number, line in enumerate(_read_text(path), start=1):
        if not line.strip():
            continue
        name_and_index, tab, caption = line.partition("\t")
        name, hash_sign, index = name_and_index.partition("#")
        if not tab or not hash_sign or not name or not index.strip().isdigit():
            raise DataFormatError(f"{path}: line {number}: expected 'IMAGE#N<TAB>caption', got {line!r:.80}")
        captions.setdefault(name.strip(), []).append(caption)
    return captions


def read(args: argparse.Namespace) -> tuple[list[Record], list[dict]]:
    """One record per image named in the token file; images in no split file are reported, not written."""
    captions = _read_captions(args.captions)
    split_files = parse_mapping(args.splits, "--splits")
    if None in split_files:
        raise DataFormatError(f"--splits: {split_files[None]!r} needs a split name, e.g. train={split_files[None]}")
    split_of: dict[str, str] = {}
    listed_in: dict[str, str] = {}
    for label, list_file in split_files.items():
        split = check_split_name(label, f"--splits {label}={list_file}")
        for line in _read_text(Path(list_file)):
            if line.strip():
                split_of.setdefault(line.strip(), split)
                listed_in.setdefault(line.strip(), list_file)
    if not split_files:
        stems = {name: Path(name).stem for name in captions}
        by_stem = assign_fraction_splits(list(stems.values()), args.val_fraction, args.test_fraction)
        split_of = {name: by_stem[stem] for name, stem in stems.items()}
    records, issues = [], []
    images = ImageRoot(args.images, args.allow_images_outside)
    for name, image_captions in captions.items():
        image_path = images.resolve(name, f"{args.captions}: image {name!r:.80}")
        if name not in split_of:
            issues.append(issue(Path(name).stem, image_path, "not listed in any --splits file"))
            continue
        records.append(Record(Path(name).stem, split_of[name], image_captions, image_path, image_path))
    for name in sorted(split_of.keys() - captions.keys()):  # listed in a split file but never captioned
        image_path = images.resolve(name, f"{listed_in[name]}: image {name!r:.80}")
        records.append(Record(Path(name).stem, split_of[name], [], image_path, image_path))
    return records, issues


SOURCE = Source("Flickr8k/30k token file + split lists", add_arguments, input_paths, read)
