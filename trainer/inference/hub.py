"""Sharing checkpoints by name on the Hugging Face Hub: resolve ``org/name`` to a local snapshot (through
``huggingface_hub``: its cache, ``HF_HUB_OFFLINE``, a ``revision`` pin) and push a checkpoint or an export.

A local directory always wins over a Hub name. What comes from the Hub is untrusted like any checkpoint: only the
files in ``CHECKPOINT_FILES`` are fetched and used (safetensors and JSON, nothing that unpickles), each must be a
regular file inside the repository's cache folder and below its size bound. ``huggingface_hub`` is imported only
when a name is resolved or pushed (``pip install 'showattend[hub]'``).
"""
from __future__ import annotations

import re
from pathlib import Path

# file name -> largest size accepted (bytes); the model holds the frozen ResNet-50 (~94 MB)
CHECKPOINT_FILES = {"model.safetensors": 4 * 2**30, "config.json": 2**20, "vocab.json": 64 * 2**20,
                    "trainer_state.json": 64 * 2**20}
REQUIRED_FILES = ("model.safetensors", "config.json", "vocab.json")
CARD_FILE = "README.md"
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


def is_repo_id(name: str) -> bool:
    """``org/name`` as the Hub spells repository ids (no ``..`` or ``--``, which the cache uses as a separator)."""
    return bool(REPO_ID.fullmatch(name)) and ".." not in name and "--" not in name and not name.endswith(".")


def hub_module():
    try:
        import huggingface_hub
    except ImportError:
        raise ValueError("loading or pushing by Hub name needs huggingface_hub: pip install 'showattend[hub]'") from None
    return huggingface_hub


def resolve_checkpoint(name_or_dir: str | Path, revision: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """A local checkpoint directory: ``name_or_dir`` itself when it exists locally, else the checked snapshot of the
    Hub repository of that id at ``revision`` (a branch, tag or commit; default main)."""
    path = Path(name_or_dir)
    if path.exists() or not is_repo_id(str(name_or_dir)):
        return path  # the loader says what is wrong with a local path
    hub = hub_module()
    try:
        snapshot = Path(hub.snapshot_download(str(name_or_dir), revision=revision, cache_dir=cache_dir,
                                              allow_patterns=list(CHECKPOINT_FILES)))
    except Exception as error:  # noqa: BLE001 - offline and not cached, unknown repo, network: one line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileNotFoundError(f"checkpoint {name_or_dir!r} is not a local directory, and as a Hub repository"
                                f"{f' at revision {revision!r}' if revision else ''}: {reason}") from None
    check_snapshot(snapshot, str(name_or_dir))
    return snapshot


def check_snapshot(snapshot: Path, repo_id: str) -> None:
    """ValueError unless the snapshot holds the required files, each a regular file inside the repository's cache
    folder (``models--org--name``: snapshots link to its ``blobs``) and within its size bound."""
    repo_folder = snapshot.resolve().parents[1]
    for name, most in CHECKPOINT_FILES.items():
        path = snapshot / name
        if not path.exists() and not path.is_symlink():
            if name in REQUIRED_FILES:
                raise ValueError(f"Hub repository {repo_id!r} has no {name} (a showattend checkpoint has "
                                 f"{', '.join(REQUIRED_FILES)})")
            continue
        target = path.resolve()
        if repo_folder not in target.parents or not target.is_file():
            raise ValueError(f"Hub repository {repo_id!r}: {name} is not a file inside its cache folder {repo_folder}")
        if target.stat().st_size > most:
            raise ValueError(f"Hub repository {repo_id!r}: {name} is {target.stat().st_size:,} bytes, more than the "
                             f"{most:,} accepted")
