"""Splits for sources without split information: a deterministic val/test fraction by image-id hash."""
from __future__ import annotations

import argparse
import hashlib

from .common import DataFormatError


def add_fraction_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for sources without split information: a deterministic val/test fraction by image-id hash."""
    parser.add_argument("--val-fraction", type=float, default=0.0,
                        help="fraction of images without a split that go to val (deterministic by id hash)")
    parser.add_argument("--test-fraction", type=float, default=0.0,
                        help="fraction of images without a split that go to test (deterministic by id hash)")


def assign_fraction_splits(image_ids: list[str], val_fraction: float, test_fraction: float) -> dict[str, str]:
    """Map each id to train/val/test: ids ordered by sha1 hash; first val_fraction -> val, next test_fraction -> test.

    Depends only on the set of ids, not their order in the file, so re-running gives the same split."""
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise DataFormatError(f"--val-fraction {val_fraction} and --test-fraction {test_fraction} must be >= 0 and "
                              "sum to less than 1")
    ordered = sorted(set(image_ids), key=lambda image_id: (hashlib.sha1(image_id.encode()).hexdigest(), image_id))
    num_val = round(len(ordered) * val_fraction)
    num_test = round(len(ordered) * test_fraction)
    splits = {}
    for position, image_id in enumerate(ordered):
        splits[image_id] = "val" if position < num_val else "test" if position < num_val + num_test else "train"
    return splits
