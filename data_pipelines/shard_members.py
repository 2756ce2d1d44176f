"""Reading a prepared split's samples outside the training stream (baselines, the report's gallery, SCST's CIDEr-D
document frequencies): ``split_samples`` is the one reader, ``shard_members`` the tar walk under it.

Only regular files are read. A symlink or hardlink member is skipped, as the stream skips it (webdataset reads
regular members only): tarfile would otherwise look for its target in the archive (a KeyError when there is none)."""
from __future__ import annotations

import json
import logging
import tarfile
from pathlib import Path
from typing import Iterator, NamedTuple

from data_pipelines.data_root import DataRoot, open_location
from data_pipelines.manifest import read_manifest

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


class SplitSample(NamedTuple):
    """One sample of a prepared split: its image id, raw reference captions and (when asked for) JPEG bytes."""

    image_id: str
    captions: list[str]
    jpeg: bytes | None


def split_samples(root, split: str, images: bool = False) -> Iterator[SplitSample]:
    """Each sample of ``split`` of the prepared dataset at ``root`` (a folder or URL), in shard order; reads only the
    ``.json`` members, and the ``.jpg`` ones too with ``images`` (``jpeg`` is None for a sample without one)."""
    root = DataRoot(root)
    manifest = read_manifest(root)
    if split not in manifest["splits"]:
        raise ValueError(f"{root.join('manifest.json')} has no split {split!r}; it has {sorted(manifest['splits'])}")
    for shard in manifest["splits"][split]["shards"]:
        location, metas, jpegs = root.join(shard), {}, {}
        for key, extension, payload in shard_members(location, ("json", "jpg") if images else ("json",)):
            if extension == "json":
                metas[key] = sample_meta(payload, f"{location}: {key}.json", key)
            else:
                jpegs[key] = payload
        for key, meta in metas.items():
            yield SplitSample(meta["image_id"], meta["captions"], jpegs.get(key))
