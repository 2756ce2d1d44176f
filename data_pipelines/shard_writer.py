"""Write one split's samples into ``{split}-NNNNNN.tar`` WebDataset shards, each finished shard renamed into place."""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path


class ShardWriter:
    """Append samples (``KEY.ext`` members) to shards of at most ``shard_size`` samples.

    A shard is written as ``.NAME.partial`` and renamed to ``NAME`` only when complete, so a reader never sees a
    half-written tar. Member headers carry no time or owner, so the same samples give byte-identical shards."""

    def __init__(self, directory: str | Path, split: str, shard_size: int):
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.directory = Path(directory)
        self.split = split
        self.shard_size = shard_size
        self.shards: list[dict] = []  # {"name", "images", "captions"} of finished shards
        self._tar: tarfile.TarFile | None = None
        self._partial: Path | None = None
        self._images = self._captions = 0

    def write(self, key: str, members: dict[str, bytes], num_captions: int) -> None:
        """Add one sample: ``members`` maps extension (``"jpg"``, ``"json"``) to the file bytes."""
        if "." in key or "/" in key:
            raise ValueError(f"sample key {key!r} must not contain '.' or '/' (webdataset splits keys at dots)")
        if self._tar is None:
            self._open_next()
        for extension, payload in members.items():
            info = tarfile.TarInfo(f"{key}.{extension}")
            info.size, info.mode, info.mtime = len(payload), 0o644, 0
            self._tar.addfile(info, io.BytesIO(payload))
        self._images += 1
        self._captions += num_captions
        if self._images == self.shard_size:
            self._finish_shard()

    def close(self) -> list[dict]:
        """Finish the last shard; returns every shard's ``{"name", "images", "captions"}``."""
        if self._tar is not None:
            self._finish_shard()
        return self.shards

    def abort(self) -> None:
        """Drop the shard being written (finished shards stay)."""
        if self._tar is not None:
            self._tar.close()
            self._partial.unlink(missing_ok=True)
            self._tar = None

    def _open_next(self) -> None:
        name = f"{self.split}-{len(self.shards):06d}.tar"
        self._partial = self.directory / f".{name}.partial"
        self._tar = tarfile.open(self._partial, "w", format=tarfile.PAX_FORMAT)
        self._images = self._captions = 0

    def _finish_shard(self) -> None:
        self._tar.close()
        name = self._partial.name[1:-len(".partial")]
        os.replace(self._partial, self.directory / name)
        self.shards.append({"name": name, "images": self._images, "captions": self._captions})
        self._tar = None
