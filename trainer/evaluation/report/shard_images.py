"""The images of a prepared split (``KEY.jpg`` beside ``KEY.json`` in its WebDataset shards), by image id."""
from __future__ import annotations

import io
from typing import Iterable, Iterator

from PIL import Image

from data_pipelines.data_root import DataRoot
from data_pipelines.image_files import SHARD_FORMATS
from data_pipelines.manifest import read_manifest
from data_pipelines.shard_members import sample_meta, shard_members


def split_images(root, split: str, wanted: Iterable[str]) -> Iterator[tuple[str, Image.Image]]:
    """(image id, RGB image) for each wanted id found in ``split`` of the prepared dataset at ``root``, in shard
    order; one pass over the tar files, only the wanted images decoded."""
    root = DataRoot(root)
    manifest = read_manifest(root)
    if split not in manifest["splits"]:
        raise ValueError(f"{root.join('manifest.json')} has no split {split!r}; it has {sorted(manifest['splits'])}")
    wanted = {str(image_id) for image_id in wanted}
    for shard in manifest["splits"][split]["shards"]:
        jpegs, ids = {}, {}
        for key, extension, payload in shard_members(root.join(shard), ("json", "jpg")):
            if extension == "json":
                ids[key] = sample_meta(payload, f"{root.join(shard)}: {key}.json", key)["image_id"]
            else:
                jpegs[key] = payload
        for key, image_id in ids.items():
            if image_id in wanted and key in jpegs:
                with Image.open(io.BytesIO(jpegs[key]), formats=SHARD_FORMATS) as image:
                    yield image_id, image.convert("RGB")
