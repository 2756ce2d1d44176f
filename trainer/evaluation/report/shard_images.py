"""The images of a prepared split (``KEY.jpg`` beside ``KEY.json`` in its WebDataset shards), by image id."""
from __future__ import annotations

import io
from typing import Iterable, Iterator

from PIL import Image

from data_pipelines.image_files import SHARD_FORMATS
from data_pipelines.shard_members import split_samples


def split_images(root, split: str, wanted: Iterable[str]) -> Iterator[tuple[str, Image.Image]]:
    """(image id, RGB image) for each wanted id found in ``split`` of the prepared dataset at ``root``, in shard
    order; one pass over the tar files, only the wanted images decoded."""
    wanted = {str(image_id) for image_id in wanted}
    for sample in split_samples(root, split, images=True):
        if sample.image_id in wanted and sample.jpeg is not None:
            with Image.open(io.BytesIO(sample.jpeg), formats=SHARD_FORMATS) as image:
                yield sample.image_id, image.convert("RGB")
