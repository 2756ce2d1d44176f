"""A checkpoint (or export) folder from elsewhere may hold ``model.safetensors -> /home/you/secret``: a symbolic link
whose target lies outside the folder. Reading through it reads a file the user never handed over, so such a link is
refused before anything in the folder is read. Links that stay inside the folder are fine.
"""
from __future__ import annotations

import os
from pathlib import Path


def link_leading_out(directory: str | Path) -> str | None:
    """Why ``directory`` must not be read (its first symbolic link whose target lies outside it), or None."""
    root = os.path.realpath(directory)
    for folder, subfolders, files in os.walk(directory):
        for name in (*subfolders, *files):
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                continue
            target = os.path.realpath(path)
            if os.path.commonpath([root, target]) != root:
                return f"{path} is a symbolic link leading out of {directory} (to {target}); refused"
    return None
