"""Image conversion for ``data_pipelines.prepare``: one image to an upright RGB JPEG (``convert_image``), and the
pool of worker processes that converts a dataset's images in chunks, results in input order."""
from __future__ import annotations

import hashlib
import io
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from itertools import islice
from multiprocessing import get_all_start_methods, get_context
from typing import Iterator

from PIL import Image, UnidentifiedImageError

from .image_files import INPUT_FORMATS, to_rgb, upright, upright_size
from .parent_death import die_with_parent
from .sources import Record

CHUNK = 8  # images per worker task: fewer, larger messages between processes


class WorkerDiedError(RuntimeError):
    """An image-converting worker process was killed (a signal, the out-of-memory killer)."""


def convert_image(image: str | bytes, image_size: int, quality: int, copy_small_jpegs: bool = False) -> dict:
    """Decode (``INPUT_FORMATS`` only), turn upright (EXIF orientation), convert to RGB, shrink the shorter side to
    ``image_size`` (never enlarge), re-encode as JPEG; with ``copy_small_jpegs`` an upright RGB JPEG already within the
    size is kept byte for byte.

    Returns ``{"jpg", "width", "height", "note", "orientation", "sha256"}`` (original upright size; note/orientation
    None when nothing was converted/rotated; sha256 of the input bytes) or ``{"error": reason, "detail": message}``;
    never raises."""
    try:
        if isinstance(image, str):
            if not os.path.isfile(image):
                return {"error": "missing image file"}
            with open(image, "rb") as handle:
                image = handle.read()
        if not image:
            return {"error": "zero-byte image file"}
        digest = hashlib.sha256(image).hexdigest()  # the same file under two ids is reported (leakage)
        with Image.open(io.BytesIO(image), formats=INPUT_FORMATS) as decoded:
            width, height, image_format = *decoded.size, decoded.format
            raw_mode = decoded.tile[0][3] if decoded.tile and isinstance(decoded.tile[0][3], str) else ""
            scale = image_size / min(width, height)
            if scale < 1 and decoded.format == "JPEG":  # decode at a reduced DCT scale, still >= the target size
                decoded.draft(decoded.mode, (int(width * scale) + 1, int(height * scale) + 1))
            decoded.load()
            turned, orientation = upright(decoded)
            rgb, note = to_rgb(turned, raw_mode)
        width, height = upright_size(width, height, orientation)
        if copy_small_jpegs and scale >= 1 and image_format == "JPEG" and orientation is None and note is None:
            # already an upright 8-bit RGB JPEG within the size: stored as it came, never re-encoded
            return {"jpg": image, "width": width, "height": height, "note": None, "orientation": None,
                    "sha256": digest}
        if scale < 1:
            target = (max(1, round(width * scale)), max(1, round(height * scale)))  # upright sides
            rgb = rgb.resize(target, Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=quality)
        return {"jpg": buffer.getvalue(), "width": width, "height": height, "note": note, "orientation": orientation,
                "sha256": digest}
    except UnidentifiedImageError:
        return {"error": "corrupt image", "detail": f"not an image in a format we read ({', '.join(INPUT_FORMATS)})"}
    except (OSError, SyntaxError, ValueError) as error:
        return {"error": "truncated or corrupt image", "detail": str(error)}
    except Exception as error:  # one bad image must never stop a long run
        return {"error": "cannot decode image", "detail": f"{type(error).__name__}: {error}"}


def convert_chunk(images: list[str | bytes], image_size: int, quality: int, copy_small_jpegs: bool) -> list[dict]:
    return [convert_image(image, image_size, quality, copy_small_jpegs) for image in images]


def start_pool(workers: int) -> ProcessPoolExecutor | None:
    """Worker processes for ``workers > 1``. Forked (cheap to start, nothing to re-import) where the OS allows, and
    started right away, before the progress bar starts its monitor thread."""
    if workers <= 1:
        return None
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    executor = ProcessPoolExecutor(workers, mp_context=get_context(method), initializer=die_with_parent,
                                   initargs=(os.getpid(),))
    for future in [executor.submit(int) for _ in range(workers)]:
        future.result()
    return executor


def converted_images(records: list[Record], options, executor: ProcessPoolExecutor | None) -> Iterator[dict]:
    """``convert_image`` results in record order; with an executor, a bounded window of chunks runs in parallel."""
    convert = partial(convert_chunk, image_size=options.image_size, quality=options.jpeg_quality,
                      copy_small_jpegs=options.copy_small_jpegs)
    images = (record.image() if callable(record.image) else record.image for record in records)
    chunks = iter(lambda: list(islice(images, CHUNK)), [])
    if executor is None:
        for chunk in chunks:
            yield from convert(chunk)
        return
    pending: deque = deque()  # (future, index of its first record)
    try:
        for number, chunk in enumerate(chunks):
            pending.append((executor.submit(convert, chunk), number * CHUNK))
            if len(pending) >= 4 * options.workers:
                yield from pending[0][0].result()
                pending.popleft()
        while pending:
            yield from pending[0][0].result()
            pending.popleft()
    except BrokenProcessPool:
        raise worker_died(pending, records) from None


def worker_died(pending: deque, records: list[Record]) -> WorkerDiedError:
    """The error for a dead worker, naming the images that were being converted (the pending chunks)."""
    first = pending[0][1] if pending else 0
    last = min(len(records), (pending[-1][1] if pending else 0) + CHUNK)
    return WorkerDiedError(f"an image-converting worker process died (killed by a signal, or for lack of memory?) "
                           f"while images {first + 1}-{last} of {len(records)} were being converted (the first of "
                           f"them: {records[first].source}); nothing was written")
