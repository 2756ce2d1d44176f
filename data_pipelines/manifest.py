"""Reading a prepared dataset's ``manifest.json`` (written by data_pipelines.prepare and data_pipelines.features) and
fingerprinting the dataset it describes."""
from __future__ import annotations

import hashlib
import json
import re

from data_pipelines.data_root import DataRoot

MANIFEST_FILE = "manifest.json"
# A shard is a plain ``.tar`` file name inside the dataset folder: no folder part ("/", "\\", ".."), no absolute path,
# no URL scheme (webdataset runs "pipe:" names as shell commands), no leading "-" or ".", no control character.
SHARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,250}\.tar")
SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_shard_name(name, source: str) -> str:
    """``name`` when it is a plain shard file name (``SHARD_NAME``), else a ValueError naming ``source`` (the file and
    key it was read from) and the value. Names read from files pass here before they reach a path or webdataset."""
    if not (isinstance(name, str) and SHARD_NAME.fullmatch(name)):
        raise ValueError(f"{source} is {name!r:.120}: a shard must be a plain file name inside the dataset folder "
                         f"(letters, digits, '.', '_', '-'; starting with a letter or digit; ending in .tar)")
    return name


def read_manifest(root) -> dict:
    """``root/manifest.json`` checked for ``{"splits": {split: {"shards": [names], "images": n, "captions": n}}}``;
    ``root`` is a folder or a URL (``data_pipelines.data_root``); every shard name is checked by ``check_shard_name``
    (every reader of shards gets them from here)."""
    root = DataRoot(root)
    path = root.join(MANIFEST_FILE)
    if not root.is_file(MANIFEST_FILE):
        raise FileNotFoundError(f"{path}: no manifest; is {root} a directory written by data_pipelines.prepare "
                                f"(or data_pipelines.features)?")
    try:
        manifest = json.loads(root.read_text(MANIFEST_FILE))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    splits = manifest.get("splits") if isinstance(manifest, dict) else None
    if not isinstance(splits, dict):
        raise ValueError(f"{path}: expected an object with key 'splits' mapping split names to their shards")
    for split, entry in splits.items():
        if not SPLIT_NAME.fullmatch(split):
            raise ValueError(f"{path}: split name {split!r:.80} under 'splits' is not a plain name (letters, digits, "
                             f"'_', '-')")
        if not (isinstance(entry, dict) and isinstance(entry.get("shards"), list) and isinstance(entry.get("images"), int)):
            raise ValueError(f"{path}: splits.{split} must have 'shards' (list of file names) and 'images' (int), "
                             f"got {entry!r:.200}")
        for index, name in enumerate(entry["shards"]):
            check_shard_name(name, f"{path}: splits.{split}.shards[{index}]")
        missing = [name for name in entry["shards"] if not root.is_file(name)]
        if missing:
            raise FileNotFoundError(f"{path}: splits.{split} lists shard(s) missing from {root}: {missing[:5]}")
    return manifest


def manifest_sha256(root) -> str:
    """sha256 of ``root/manifest.json``."""
    return hashlib.sha256(DataRoot(root).read_bytes(MANIFEST_FILE)).hexdigest()


def dataset_fingerprint(root) -> str:
    """sha256 of ``root/manifest.json`` and the byte size of every shard it lists: cheap (no shard is read) yet it
    tells apart two datasets whose manifests alone look the same (same counts, different images)."""
    root = DataRoot(root)
    digest = hashlib.sha256(root.read_bytes(MANIFEST_FILE))
    for split, entry in sorted(read_manifest(root)["splits"].items()):
        for name in entry["shards"]:
            digest.update(f"{split}/{name}:{root.size(name)};".encode())
    return digest.hexdigest()
