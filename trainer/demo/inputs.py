"""What a demo work dir is built from (WORK/demo_inputs.json): the source (the Karpathy JSON's path and sha256, or the
synthetic set's size) and the data settings. A work dir built from other inputs is refused, and nothing is deleted."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from trainer.demo.arguments import DemoArguments, DemoError

INPUTS_FILE = "demo_inputs.json"
BUILT_PARTS = ("synthetic", "prepared", "features", "train")  # the folders the record vouches for
NOTHING_RECORDED = "nothing recorded (built by an older demo.sh)"


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_record(args: DemoArguments) -> str:
    """The record as one line of JSON (sorted keys; values as given, so the file reads the same on every run)."""
    record = {"image_size": args.image_size, "shard_size": args.shard_size, "weights": args.weights}
    if args.karpathy_json:
        if not os.path.isfile(args.karpathy_json):
            raise DemoError(f"--karpathy-json {args.karpathy_json}: no such file")
        record.update(karpathy_json=args.karpathy_json, karpathy_json_sha256=_file_sha256(args.karpathy_json),
                      images=os.path.realpath(args.images))
    else:
        record.update(synthetic_num_images=args.num_images, synthetic_seed=0)
    return json.dumps(record, sort_keys=True)


def recorded_inputs(work: Path) -> str:
    try:
        return (work / INPUTS_FILE).read_bytes().decode("utf-8", "replace").rstrip("\n")
    except OSError:
        return NOTHING_RECORDED


def claim_work_dir(work: Path, inputs: str) -> None:
    """Refuse a work dir whose built folders came from other inputs (or from a demo that recorded none); otherwise
    create it and record ``inputs`` there."""
    built = [str(work / part) for part in BUILT_PARTS if (work / part).exists()]
    recorded = recorded_inputs(work)
    if built and recorded != inputs:
        raise DemoError(f"{' '.join(built)} were built from other inputs or settings; not reusing them.\n"
                        f"  built from: {recorded}\n"
                        f"  asked for:  {inputs}\n"
                        "  pass another --work DIR, or delete those folders to rebuild them here")
    work.mkdir(parents=True, exist_ok=True)
    staged = work / f".{INPUTS_FILE}.tmp"
    staged.write_text(inputs + "\n")
    os.replace(staged, work / INPUTS_FILE)  # a run stopped here leaves the old record whole
