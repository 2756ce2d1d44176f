"""Opening image files we did not write: only the formats we read, turned upright by their EXIF orientation,
converted to 8-bit RGB.

Pillow's ``Image.open`` otherwise tries every format plugin it has (EPS would start Ghostscript); decompression bombs
(more than ``2 * Image.MAX_IMAGE_PIXELS`` pixels) raise ``Image.DecompressionBombError`` at open.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

# prepare's sources and trainer.caption's images ("JPEG" also opens phone cameras' multi-picture MPO files)
INPUT_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP")
SHARD_FORMATS = ("JPEG",)  # what prepare writes into shards: all the stream and the feature extractor decode
_ORIENTATION_TAG = 0x0112
_SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that rotate by 90 degrees


def upright(image: Image.Image) -> tuple[Image.Image, int | None]:
    """``image`` as a viewer shows it (``ImageOps.exif_transpose``) and the EXIF orientation applied (None: none).
    Phone photos are often stored sideways with an orientation tag; ignoring it swaps left/right/above."""
    orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    if orientation not in range(2, 9):
        return image, None
    return ImageOps.exif_transpose(image), int(orientation)


def upright_size(width: int, height: int, orientation: int | None) -> tuple[int, int]:
    """(width, height) after applying ``orientation``."""
    return (height, width) if orientation in _SWAPS_SIDES else (width, height)


def to_rgb(image: Image.Image, raw_mode: str) -> tuple[Image.Image, str | None]:
    """RGB image plus a note describing the conversion (None when the input was 8-bit RGB already)."""
    mode = image.mode
    if mode == "RGB":
        return image, ("16-bit RGB -> 8-bit RGB" if raw_mode.startswith("RGB;16") else None)
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit greyscale (PNG): scale 0..65535 to 0..255
        pixels = np.clip(np.asarray(image, dtype=np.float64) / 257.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(pixels, "L").convert("RGB"), f"16-bit greyscale ({mode}) -> RGB"
    if mode == "F":
        pixels = np.clip(np.asarray(image, dtype=np.float64), 0, 255).round().astype(np.uint8)
        return Image.fromarray(pixels, "L").convert("RGB"), "32-bit float greyscale (F) -> RGB"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB"), f"{mode} -> RGB (alpha composited on white)"
    return image.convert("RGB"), f"{mode} -> RGB"
