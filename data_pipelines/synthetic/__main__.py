"""``python -m data_pipelines.synthetic``: write a synthetic Karpathy-format dataset (see the package docstring)."""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from . import __doc__ as package_doc
from .catalogue import DEFAULT_PRESET, PRESETS
from .generate import generate


def parse_knobs(items: list[str]) -> dict:
    """``["noise=10", "colours=[red, blue]"]`` -> ``{"noise": 10, "colours": ["red", "blue"]}`` (YAML values)."""
    knobs = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: knob {item!r} must look like name=value (e.g. noise=10 or 'colours=[red, blue]')")
        knobs[key] = yaml.safe_load(raw)
    return knobs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m data_pipelines.synthetic", description=package_doc.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--num-images", required=True, type=int)
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                        help=f"dataset family (default {DEFAULT_PRESET})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=None, help="square image side in pixels (default: preset's)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("knobs", nargs="*", help="preset fields to override, e.g. noise=10 'colours=[red, blue]'")
    args = parser.parse_args(argv)
    try:
        path = generate(args.out, args.num_images, args.seed, args.image_size, args.val_fraction, args.test_fraction,
                        preset=args.preset, knobs=parse_knobs(args.knobs))
    except ValueError as error:
        raise SystemExit(f"error: {error}") from error
    print(f"wrote {args.num_images} images ({args.preset}) and {path}")


if __name__ == "__main__":
    main()
