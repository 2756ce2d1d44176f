"""Refuse an output folder that would overwrite an input, or anything but an output of the same kind.

``--overwrite`` replaces ``--out`` as a whole, so ``--out`` must be neither an input (file or folder) nor a folder that
holds one. An output *inside* an input folder is allowed (``--images data/coco --out data/coco/prepared``): replacing
it touches nothing else, and ``check_output_holds_no_file`` catches an ``--out`` that holds listed input files.
``check_replaceable`` lets ``--overwrite`` replace only an empty folder or one whose ``manifest.json`` says the
framework wrote it as that kind of output (``"format"``), never a file or a folder of unrelated files."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def check_output_apart_from_inputs(out: str | Path, inputs: dict[str, Iterable[str | Path]]) -> None:
    """Raise ValueError when ``out`` is or contains one of ``inputs`` (flag name -> the paths it gave), symlinks
    resolved; the message names the flag and the path."""
    target = _real(out)
    for flag, paths in inputs.items():
        for given in paths:
            path = _real(given)
            if target == path or target in path.parents:
                relation = "is" if target == path else "contains"
                raise ValueError(f"--out {out} {relation} the input {given} ({flag}); --overwrite would delete it. "
                                 f"Choose an output folder that holds no input")


def check_output_holds_no_file(out: str | Path, files: Iterable[str], what: str = "input image") -> None:
    """Raise ValueError when one of ``files`` (absolute paths) lies inside ``out``; names the first one found."""
    prefixes = tuple({f"{Path(out).absolute()}{os.sep}", f"{_real(out)}{os.sep}"})
    for name in files:
        if name.startswith(prefixes):
            raise ValueError(f"--out {out} contains the {what} {name}; --overwrite would delete it. "
                             f"Choose an output folder that holds no input")


def output_format(folder: str | Path) -> str | None:
    """The ``"format"`` recorded in ``folder/manifest.json`` (None: no readable manifest object)."""
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest.get("format") if isinstance(manifest, dict) else None


def check_replaceable(out: str | Path, kind: str, what: str) -> None:
    """Raise ValueError unless ``--overwrite`` may replace ``out``: absent, an empty folder, or a folder whose
    manifest records the format ``kind`` (``what`` names it in the message, e.g. "prepared dataset")."""
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        return
    if out.is_dir() and not out.is_symlink():
        if not any(out.iterdir()) or output_format(out) == kind:
            return
        found = f"its manifest.json records format {output_format(out)!r}" if output_format(out) else \
            "it has no manifest.json"
        raise ValueError(f"--out {out} is not a {what} ({found}, {kind!r} expected); --overwrite replaces only a "
                         f"{what} written by this framework. Remove it yourself or choose another --out")
    raise ValueError(f"--out {out} is a file, not a {what}; --overwrite replaces only a {what} written by this "
                     f"framework. Remove it yourself or choose another --out")
