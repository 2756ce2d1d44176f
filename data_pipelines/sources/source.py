"""``Source``: everything ``prepare SOURCE`` needs of one caption format, declared once by the format's module (its
``SOURCE``) and registered under its name in ``data_pipelines.sources.SOURCES``."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .common import Record


@dataclass(frozen=True)
class Source:
    """One dataset source of ``showattend-prepare``, in the order prepare calls it.

    ``help``: the line ``showattend-prepare --help`` shows for it. ``add_arguments(parser)``: adds the source's own
    flags to its subcommand (``--out``, ``--image-size``, ``--allow-images-outside`` ... are common to all).
    ``input_paths(args) -> {flag: [Path]}``: the local files and folders it will read, by flag; prepare refuses an
    ``--out`` that is or holds one of them before reading anything. ``read(args) -> (records, issues)``: one ``Record``
    per image (raw captions, a split, the image as a path, bytes or a callable returning either), and one dict per
    input skipped (``common.issue``: it lands in stats.json); a malformed input is a ``DataFormatError`` naming the
    file and position. Image paths taken from an annotation file go through ``image_root.ImageRoot`` (refused outside
    the image folder unless ``args.allow_images_outside``). ``copy_small_jpegs``: the default of
    ``--copy-small-jpegs`` (store an upright JPEG already small enough as it came).
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    input_paths: Callable[[argparse.Namespace], dict[str, list[Path]]]
    read: Callable[[argparse.Namespace], tuple[list[Record], list[dict]]]
    copy_small_jpegs: bool = False
