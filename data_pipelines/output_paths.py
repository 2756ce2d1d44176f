"""Refuse an output folder that would overwrite an input.

``--overwrite`` replaces ``--out`` as a whole, so ``--out`` must be neither an input (file or folder) nor a folder that
holds one. An output *inside* an input folder is allowed (``--images data/coco --out data/coco/prepared``): replacing
it touches nothing else, and ``check_output_holds_no_file`` catches an ``--out`` that holds listed input files."""
from __future__ import annotations

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
