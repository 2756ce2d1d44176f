"""Where the image paths of an annotation file may lead: inside the image folder the user gave (``--images``, or the
annotation file's folder), unless ``--allow-images-outside`` says otherwise.

An annotation file is data from elsewhere: a ``filepath`` of ``../../etc``, an absolute ``file_name`` or a symlink in
the image folder pointing out of it would otherwise have prepare read that file and pack it into the shards."""
from __future__ import annotations

import os
from pathlib import Path

from .common import DataFormatError

ALLOW_FLAG = "--allow-images-outside"


class ImageRoot:
    """Resolves annotation-file image paths against ``base`` and refuses those whose real path (symlinks followed)
    leaves it, unless ``allow_outside``."""

    def __init__(self, base: str | Path, allow_outside: bool = False):
        self.base = Path(base).absolute()
        self.real_base = os.path.realpath(self.base)
        self.allow_outside = allow_outside
        self._real_parents: dict[str, str] = {}  # many images share a folder: resolve each folder once

    def _real_path(self, path: str) -> str:
        """``os.path.realpath(path)``, the folder part looked up once per folder (strings: Path is slow here)."""
        parent, name = os.path.split(path)
        if name in ("", ".", ".."):
            return os.path.realpath(path)
        real_parent = self._real_parents.get(parent)
        if real_parent is None:
            real_parent = self._real_parents[parent] = os.path.realpath(parent)
        candidate = os.path.join(real_parent, name)
        return os.path.realpath(candidate) if os.path.islink(candidate) else candidate

    def resolve(self, value: str, where: str) -> str:
        """The absolute path of image ``value`` (relative paths start at ``base``); DataFormatError naming ``where``
        and the value when it leads outside ``base``."""
        if "\0" in value:
            raise DataFormatError(f"{where}: image path {value!r:.200} holds a NUL character")
        path = self.base / value  # an absolute value replaces base
        if not self.allow_outside:
            real = self._real_path(str(path))
            if real != self.real_base and not real.startswith(self.real_base.rstrip(os.sep) + os.sep):
                raise DataFormatError(f"{where}: image path {value!r:.200} leads outside the image folder {self.base} "
                                      f"(to {real}); pass {ALLOW_FLAG} to read images outside it")
        return str(path)
