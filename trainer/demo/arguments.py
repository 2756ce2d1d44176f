"""What a demo run is asked to do: the command line and the DEMO_* environment variables, read once."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

REPO = Path(__file__).resolve().parents[2]

HELP = """\
The whole framework in one command, offline, on 2 CPU cores (or every GPU there is):
  synthetic dataset -> prepare karpathy -> feature cache -> accelerate launch trainer/train.py (cross-entropy, then
  self-critical; DEMO_SCST=0 skips the second stage)
  -> trainer.evaluate_checkpoint (test split, HTML report) -> trainer.caption (a few test images, attention PNGs) -> summary.

  bash launch/demo.sh                                       # built-in synthetic dataset (preset "shapes")
  bash launch/demo.sh --preset toys                         # another synthetic preset: shapes|toys|cluttered|scenes|textures
  bash launch/demo.sh --karpathy-json FILE --images ROOT    # your own Karpathy-format data instead
  bash launch/demo.sh --work DIR [key=value ...]            # another work dir; overrides go to trainer/train.py
  (python -m trainer.demo and showattend-demo take the same arguments.)
  DEMO_NUM_IMAGES / DEMO_IMAGE_SIZE / DEMO_SHARD_SIZE size the data (defaults 3000 / 128 / 100; DEMO_IMAGE_SIZE
  also sets the drawn size of synthetic images, else each preset draws at its own size);
  DEMO_WEIGHTS=imagenet|PATH uses a real backbone (default none: random and frozen, offline).
  DEMO_MINUTES (default 15) is the whole run's wall-clock budget: cross-entropy trains while val CIDEr-D improves
  (configs/demo.yaml: eval.patience), within what the budget leaves after keeping some for SCST and the evaluations;
  SCST gets the rest (train.max_minutes of each stage). PYTHON is the interpreter the stages run with.

Idempotent: data, features and finished training are reused on a second run (training resumes from its latest
checkpoint), but only when they were built from the same inputs and settings (recorded in WORK/demo_inputs.json);
otherwise the demo stops and says so, and nothing is deleted. The last line of output is the test-split metrics as
one JSON object."""


class DemoError(Exception):
    """A demo run that cannot go on: the message is printed as one line (prefixed ``demo:``), the exit status is
    ``status`` (2 for a bad command line or work dir, a stage's own status when a stage failed)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


class HelpRequested(Exception):
    """``-h``/``--help``: print HELP and exit 0."""


@dataclass(frozen=True)
class DemoArguments:
    work: Path
    preset: str = "shapes"
    karpathy_json: str = ""  # empty: the built-in synthetic dataset
    images: str = ""
    num_images: str = "3000"
    image_size: str = "128"
    synthetic_image_size: str = ""  # DEMO_IMAGE_SIZE as given: empty lets each preset draw at its own size
    shard_size: str = "100"  # >= 8 train shards, so up to 8 ranks x 1 worker get one each
    weights: str = "none"  # frozen backbone: none (random, offline) | imagenet | PATH
    budget_minutes: int = 15
    scst: bool = True
    overrides: list[str] = field(default_factory=list)  # key=value for trainer/train.py (both stages)


def _value_after(argv: list[str], index: int) -> str:
    if index + 1 >= len(argv):
        raise DemoError(f"{argv[index]} needs a value (see --help)")
    return argv[index + 1]


def _whole_minutes(environ: Mapping[str, str]) -> int:
    value = environ.get("DEMO_MINUTES") or "15"
    try:
        minutes = int(value)
    except ValueError:
        minutes = 0
    if minutes < 1:
        raise DemoError(f"DEMO_MINUTES={value!r}: expected a whole number of minutes, at least 1")
    return minutes


def parse_arguments(argv: list[str], environ: Mapping[str, str]) -> DemoArguments:
    """The demo's flags (``--work``, ``--preset``, ``--karpathy-json``, ``--images``, ``key=value`` overrides) and
    DEMO_* variables; paths are made absolute here, before anything runs."""
    options = {"work": "", "preset": "shapes", "karpathy_json": "", "images": ""}
    flags = {"--work": "work", "--preset": "preset", "--karpathy-json": "karpathy_json", "--images": "images"}
    overrides, index = [], 0
    while index < len(argv):
        argument = argv[index]
        if argument in flags:
            value = _value_after(argv, index)
            options[flags[argument]] = value if argument == "--preset" else os.path.realpath(value)
            index += 2
            continue
        if argument in ("-h", "--help"):
            raise HelpRequested
        if "=" not in argument:
            raise DemoError(f"unknown argument '{argument}' (see --help)")
        overrides.append(argument)
        index += 1
    if options["karpathy_json"] and not options["images"]:
        raise DemoError("--karpathy-json needs --images ROOT (the folder the JSON's filepath/filename are relative to)")
    # each preset gets its own default work dir, so the built-in demo's files stay where they were
    default_work = REPO / "runs" / ("demo" if options["preset"] == "shapes" else f"demo-{options['preset']}")
    return DemoArguments(
        work=Path(options["work"]) if options["work"] else default_work, preset=options["preset"],
        karpathy_json=options["karpathy_json"], images=options["images"],
        num_images=environ.get("DEMO_NUM_IMAGES") or "3000", image_size=environ.get("DEMO_IMAGE_SIZE") or "128",
        synthetic_image_size=environ.get("DEMO_IMAGE_SIZE") or "", shard_size=environ.get("DEMO_SHARD_SIZE") or "100",
        weights=environ.get("DEMO_WEIGHTS") or "none", budget_minutes=_whole_minutes(environ),
        scst=(environ.get("DEMO_SCST") or "1") != "0", overrides=overrides)
