"""The images of a prepared split (``KEY.jpg`` beside ``KEY.json`` in its WebDataset shards), by image id."""
from __future__ import annotations

import io
import json
import tarfile
from typing import Iterable, Iterator

from PIL import Image

from data_pipelines.data_root import DataRoot, open_location
from data_pipelines.manifest import read_manifest


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
        with open_location(root.join(shard)) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                key, _, extension = member.name.rpartition(".")
                if not member.isfile():
                    continue
                if extension == "json":
                    ids[key] = str(json.loads(tar.extractfile(member).read())["image_id"])
                elif extension == "jpg":
                    jpegs[key] = tar.extractfile(member).read()
        for key, image_id in ids.items():
            if image_id in wanted and key in jpegs:
                with Image.open(io.BytesIO(jpegs[key])) as image:
                    yield image_id, image.convert("RGB")
