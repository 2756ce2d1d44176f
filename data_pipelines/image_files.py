"""Opening image files we did not write: only the formats we read, turned upright by their EXIF orientation.

Pillow's ``Image.open`` otherwise tries every format plugin it has (EPS would start Ghostscript); decompression bombs
(more than ``2 * Image.MAX_IMAGE_PIXELS`` pixels) raise ``Image.DecompressionBombError`` at open.
"""
from __future__ import annotations

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
