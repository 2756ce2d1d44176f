"""What one request may send and cost, and the checks that hold it to that before any work is done on it.

The image is opened lazily (header only) to learn its format and size: a file that is not an image we read is refused
(415), and one with more pixels than allowed is refused before a single pixel is decoded (413: decompression bombs).
Only then is it decoded, by the same loader as ``trainer.caption`` (``trainer.inference.pipeline.load_image``).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from data_pipelines.image_files import INPUT_FORMATS
from trainer.inference.pipeline import load_image


@dataclass(frozen=True)
class ServeLimits:
    """max_body_bytes: request body (413 above). max_pixels: width x height of the image (413 above), checked from
    its header. max_queue: requests waiting for the model (503 + Retry-After above). request_timeout_s: from a
    request's arrival to its captions (504 after). read_timeout_s: the whole body must arrive within it (408 after),
    so a slow client holds only its own connection, never the model. max_beam_size, max_len: the largest decoding a
    request may ask for."""

    max_body_bytes: int = 8 * 2**20
    max_pixels: int = 40_000_000
    max_queue: int = 256
    request_timeout_s: float = 30.0
    read_timeout_s: float = 10.0
    max_beam_size: int = 10
    max_len: int = 50
    retry_after_s: int = 1


class RequestError(Exception):
    """A request refused with an HTTP ``status`` and a one-line ``message`` (sent as JSON ``{"error": ...}``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def decode_image(body: bytes, limits: ServeLimits) -> Image.Image:
    """The upright RGB image of a request body; RequestError 415 (not an image we read), 413 (too many pixels) or
    400 (truncated or corrupt)."""
    if not body:
        raise RequestError(400, "empty body: send an image (raw body, or multipart field 'image')")
    try:
        with Image.open(io.BytesIO(body), formats=INPUT_FORMATS) as header:  # reads the header only
            width, height = header.size
    except Image.DecompressionBombError as error:
        raise RequestError(413, f"refused: {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        width = height = None
    if width is None:
        raise RequestError(415, f"not an image in a format we read ({', '.join(INPUT_FORMATS)})")
    if width * height > limits.max_pixels:
        raise RequestError(413, f"image of {width} x {height} pixels exceeds the limit of {limits.max_pixels:,} pixels")
    try:
        return load_image(io.BytesIO(body))
    except (OSError, ValueError) as error:
        raise RequestError(400, f"bad image: {error}") from None
