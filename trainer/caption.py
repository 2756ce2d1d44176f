"""Caption image files with a checkpoint; optionally save each caption's attention maps as one PNG per image.

    python -m trainer.caption --checkpoint CKPT IMAGE [IMAGE ...] [--beam-size 3] [--attention-dir DIR] [--json]
    python -m trainer.caption --checkpoint ORG/NAME [--revision REV] IMAGE ...   # a Hugging Face Hub repository

Prints ``path<TAB>caption`` per image (``--n-best K``: K lines per image, best first), or with ``--json`` one JSON
object per image: ``{"path": ..., "captions": [{"text": ..., "score": ...}, ...]}`` (plus ``"attention"``: the PNG
written, or ``"error"``: why the image has no caption). An image that fails (missing, not in a format we read,
corrupt, a decompression bomb) gets an error (stderr, or its JSON line); the others are still captioned, and the exit
status is 1 if any image failed. Images are turned upright by their EXIF orientation first, as
``data_pipelines.prepare`` does for training (see ``trainer.inference.pipeline``).

Attention maps never replace a file: DIR must not hold an input image, and a map whose name is taken gets the next
free ``STEM-N.png``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from trainer.evaluation.attention_maps import attention_figure, crop_like_model
from trainer.inference.arguments import add_checkpoint_arguments, add_decoding_arguments, at_least, options_from_args
from trainer.inference.pipeline import DECODE_DTYPE_HELP, DECODE_DTYPES, DEFAULT_IMAGE_SIZE, CaptionPipeline, load_image

__all__ = ["load_image", "main"]
MAX_NAME_TRIES = 1000  # STEM.png, STEM-2.png, ...: a folder this full of one stem is refused


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trainer.caption", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    add_checkpoint_arguments(parser)
    add_decoding_arguments(parser)
    parser.add_argument("--batch-size", type=at_least(1), default=8)
    parser.add_argument("--image-size", type=at_least(1), default=None,
                        help=f"default: the checkpoint's data.image_size, else {DEFAULT_IMAGE_SIZE}")
    parser.add_argument("--attention-dir", type=Path, default=None,
                        help="write IMAGE-STEM.png here: the image, then each word's attention heatmap")
    parser.add_argument("--json", action="store_true", help="one JSON object per image instead of path<TAB>caption")
    parser.add_argument("--dtype", choices=sorted(DECODE_DTYPES), default="float32", help=DECODE_DTYPE_HELP)
    return parser.parse_args(argv)


def attention_dir_error(directory: Path, images: list[Path]) -> str | None:
    """Why maps cannot be written to ``directory`` (created here if missing), or None."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"--attention-dir {directory}: cannot create it ({error.strerror or error})"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"--attention-dir {directory}: not writable"
    resolved = directory.resolve()
    for image in images:
        if image.resolve().parent == resolved:
            return (f"--attention-dir {directory} holds the input image {image}: choose a folder of its own "
                    f"(maps are never written beside their inputs)")
    return None


def write_new_png(figure, directory: Path, stem: str) -> Path:
    """Save ``figure`` as ``directory/STEM.png``, or the first free ``STEM-N.png``: never replaces a file."""
    for attempt in range(1, MAX_NAME_TRIES + 1):
        path = directory / (f"{stem}.png" if attempt == 1 else f"{stem}-{attempt}.png")
        try:
            with open(path, "xb") as handle:  # exclusive create: fails rather than replace
                figure.save(handle, format="PNG")
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory}: {stem}.png .. {stem}-{MAX_NAME_TRIES}.png all exist")


def caption_record(caption) -> dict:
    """A caption as JSON: a score JSON cannot hold (-inf when no caption met the decoding controls, NaN) is null,
    with the reason."""
    if math.isfinite(caption.score):
        return {"text": caption.text, "score": caption.score}
    return {"text": caption.text, "score": None,
            "score_note": f"{caption.score} (no caption met the decoding controls, e.g. --min-len above --max-len)"}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        options = options_from_args(args)
        if args.attention_dir is not None and attention_dir_error(args.attention_dir, args.images):
            raise ValueError(attention_dir_error(args.attention_dir, args.images))
        pipe = CaptionPipeline.from_pretrained(args.checkpoint, args.revision, dtype=args.dtype,
                                               image_size=args.image_size)
    except (OSError, ValueError) as error:
        sys.exit(f"error: {error}")
    if pipe.model.config.finetune_from != "none":  # a frozen backbone, the common case, goes without saying
        print(f"{args.checkpoint}: {pipe.encoder}", file=sys.stderr)
    results = pipe(args.images, options, batch_size=args.batch_size, attention=args.attention_dir is not None,
                   suppress_unk=args.suppress_unk)
    failures = 0
    for result in results:
        line: dict = {"path": result.source, "captions": [caption_record(c) for c in result.captions]}
        if result.error is None and args.attention_dir is not None:
            best = result.captions[0]
            figure = attention_figure(crop_like_model(result.image, pipe.image_size), best.text.split(), best.alphas,
                                      pipe.model.config.grid_size)
            try:
                line["attention"] = str(write_new_png(figure, args.attention_dir, Path(result.source).stem))
            except OSError as error:
                result.error = f"attention map not written: {error}"
        if result.error is not None:
            failures += 1
            line["error"] = result.error
            if not args.json:
                print(f"error: {result.source}: {result.error}", file=sys.stderr)
        if args.json:
            print(json.dumps(line, ensure_ascii=False, allow_nan=False), flush=True)
        else:
            for caption in result.captions:
                print(f"{result.source}\t{caption.text}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
