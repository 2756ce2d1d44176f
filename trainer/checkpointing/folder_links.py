"""A checkpoint (or export) folder from elsewhere may hold ``model.safetensors -> /home/you/secret``: a symbolic link
whose target lies outside the folder. Reading through it reads a file the user never handed over, so such a link is
refused before anything in the folder is read. Links that stay inside the folder are fine, and so are those of a
Hugging Face Hub cache snapshot (``models--ORG--NAME/snapshots/REV``) into its repository's cache folder, where
``huggingface_hub`` keeps the files (``blobs/``).
"""
from __future__ import annotations

import os
from pathlib import Path


def link_boundary(directory: str | Path) -> str:
    """The folder ``directory``'s links must stay in: itself, or for a Hub cache snapshot its repository folder."""
    root = os.path.realpath(directory)
    snapshots, repo = Path(root).parent, Path(root).parent.parent
    if snapshots.name == "snapshots" and repo.name.startswith("models--"):
        return str(repo)
    return root


def link_leading_out(directory: str | Path) -> str | None:
    """Why ``directory`` must not be read (its first symbolic link whose target lies outside ``link_boundary``), or
    None."""
    root = link_boundary(directory)
    for folder, subfolders, files in os.walk(directory):
        for name in (*subfolders, *files):
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                continue
            target = os.path.realpath(path)
            if os.path.commonpath([root, target]) != root:
                return f"{path} is a symbolic link leading out of {directory} (to {target}); refused"
    return None
