"""Reading one shard's members outside the training stream (trainer.baselines, the report's gallery).

Only regular files are read. A symlink or hardlink member is skipped, as the stream skips it (webdataset reads
regular members only): tarfile would otherwise look for its target in the archive (a KeyError when there is none)."""
from __future__ import annotations

import json
import logging
import tarfile
from pathlib import Path
from typing import Iterator

from data_pipelines.data_root import open_location

logger = logging.getLogger(__name__)


def shard_members(path: str | Path, extensions: tuple[str, ...]) -> Iterator[tuple[str, str, bytes]]:
    """(key, extension, bytes) of each regular member ``KEY.EXT`` with EXT in ``extensions`` of the tar at ``path`` (a
    file or URL, read as one stream), in archive order. Skipped link members are counted in one WARNING per shard; a
    file that is not a readable tar is a ValueError naming it."""
    links = []
    try:
        with open_location(str(path)) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                key, _, extension = member.name.rpartition(".")
                if extension not in extensions:
                    continue
                if not member.isfile():
                    links.append(member.name)
                    continue
                yield key, extension, tar.extractfile(member).read()
    except tarfile.TarError as error:
        raise ValueError(f"{path}: not a readable tar file ({error})") from None
    if links:
        logger.warning("%s: skipped %d member(s) that are links, not files (e.g. %r)", path, len(links), links[:3])


def sample_meta(payload: bytes, where: str, key: str) -> dict:
    """``{"image_id": str, "captions": [str, ...]}`` of a sample's ``.json`` member; ValueError naming ``where``."""
    try:
        meta = json.loads(payload)
    except ValueError as error:  # JSON or UTF-8
        raise ValueError(f"{where}: not valid JSON ({error})") from None
    captions = meta.get("captions") if isinstance(meta, dict) else None
    if not isinstance(captions, list) or not captions or not all(isinstance(c, str) for c in captions):
        raise ValueError(f"{where}: key 'captions' must be a non-empty list of strings")
    return {"image_id": str(meta.get("image_id", key)), "captions": captions}
