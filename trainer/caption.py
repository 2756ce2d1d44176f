"""Caption image files with a checkpoint; optionally save each caption's attention maps as one PNG per image.

    python -m trainer.caption --checkpoint CKPT IMAGE [IMAGE ...] [--beam-size 3] [--attention-dir DIR]

Prints ``path<TAB>caption`` per image. An image that fails (missing, not in a format we read, corrupt, a decompression
bomb) gets an error line on stderr; the others are still captioned, and the exit status is 1 if any image failed.
Images are turned upright by their EXIF orientation first, as ``data_pipelines.prepare`` does for training.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from data_pipelines.image_files import INPUT_FORMATS, upright
from data_pipelines.transforms import eval_transform
from trainer.attention_maps import attention_figure, crop_like_model
from trainer.evaluate_checkpoint import DECODE_DTYPE_HELP, DECODE_DTYPES, DEFAULT_IMAGE_SIZE, load_for_inference



def load_image(path: Path) -> Image.Image:
    """Upright RGB image of ``path``; OSError/ValueError with the reason when it is missing or not a readable image."""
    if not path.is_file():
        raise FileNotFoundError("no such file")
    try:
        with Image.open(path, formats=INPUT_FORMATS) as image:
            return upright(image)[0].convert("RGB")
    except UnidentifiedImageError:
        raise ValueError(f"not a readable image file (formats read: {', '.join(INPUT_FORMATS)})") from None
    except Image.DecompressionBombError as error:
        raise ValueError(f"refused: {error}") from None
    except (OSError, SyntaxError) as error:
        raise ValueError(f"cannot decode image ({error})") from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trainer.caption", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint dir (model + config + vocab.json)")
    parser.add_argument("--beam-size", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=20, help="maximum caption length in words")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=None,
                        help=f"default: the checkpoint's data.image_size, else {DEFAULT_IMAGE_SIZE}")
    parser.add_argument("--attention-dir", type=Path, default=None,
                        help="write IMAGE-STEM.png here: the image, then each word's attention heatmap")
    parser.add_argument("--dtype", choices=sorted(DECODE_DTYPES), default="float32", help=DECODE_DTYPE_HELP)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    model, vocab, image_size = load_for_inference(args.checkpoint, args.image_size)
    model.to(DECODE_DTYPES[args.dtype])
    transform = eval_transform(image_size)
    loaded, failures = [], 0
    for path in args.images:
        try:
            image = load_image(path)
            loaded.append((path, image, transform(image)))
        except Exception as error:  # noqa: BLE001 - whatever one image does wrong, the others are still captioned
            failures += 1
            print(f"error: {path}: {error}", file=sys.stderr)
    if args.attention_dir is not None:
        args.attention_dir.mkdir(parents=True, exist_ok=True)
    figure_names: set[str] = set()

    for start in range(0, len(loaded), args.batch_size):
        batch = loaded[start:start + args.batch_size]
        pixels = torch.stack([image_pixels for *_, image_pixels in batch])
        generation = model.generate(pixels, beam_size=args.beam_size, max_len=args.max_len)
        for (path, image, _), tokens, alphas in zip(batch, generation.tokens.tolist(), generation.alphas):
            caption = vocab.decode(tokens)
            print(f"{path}\t{caption}", flush=True)
            if args.attention_dir is not None:
                words = caption.split()
                figure = attention_figure(crop_like_model(image, image_size), words,
                                          alphas[:len(words)].float().numpy(), model.config.grid_size)
                name = path.stem
                while name in figure_names:  # two inputs with the same file name: keep both figures
                    name += "_"
                figure_names.add(name)
                figure.save(args.attention_dir / f"{name}.png")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
