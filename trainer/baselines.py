"""Reference points for a split's metrics: a blind baseline and one human caption against the others.

    python -m trainer.baselines --data OUT [--split test]

- blind: the most common training caption (after tokenization) predicted for every image; what a model that ignores
  the image can reach.
- human: each image's first reference caption scored against its remaining references (one fewer reference than a
  model gets, as in the usual "human" rows of captioning tables).
Prints one JSON object {"blind": {...}, "human": {...}, "blind_caption": "..."} on the last line.
"""
from __future__ import annotations

import argparse
import json
import tarfile
from collections import Counter
from pathlib import Path

from data_pipelines.manifest import read_manifest
from trainer.metrics import compute_caption_metrics
from trainer.metrics.tokenizer import tokenize_caption


def split_captions(root: Path, split: str) -> dict[str, list[str]]:
    """image_id -> raw captions of every sample in a prepared split (reads only the .json members)."""
    manifest = read_manifest(root)
    if split not in manifest["splits"]:
        raise ValueError(f"{root / 'manifest.json'} has no split {split!r}; it has {sorted(manifest['splits'])}")
    captions = {}
    for shard in manifest["splits"][split]["shards"]:
        with tarfile.open(root / shard) as tar:
            for member in tar:
                if member.name.endswith(".json"):
                    sample = json.loads(tar.extractfile(member).read())
                    captions[str(sample["image_id"])] = sample["captions"]
    return captions


def caption_baselines(root: Path, split: str = "test") -> dict:
    """Blind and human metrics on ``split`` of the prepared dataset at ``root``."""
    train = split_captions(root, "train")
    counts = Counter(tokenize_caption(caption) for captions in train.values() for caption in captions)
    blind_caption = counts.most_common(1)[0][0]
    references = split_captions(root, split)
    blind = compute_caption_metrics({image_id: blind_caption for image_id in references}, references)
    several = {image_id: refs for image_id, refs in references.items() if len(refs) > 1}
    human = compute_caption_metrics({image_id: refs[0] for image_id, refs in several.items()},
                                    {image_id: refs[1:] for image_id, refs in several.items()})
    return {"blind": blind, "human": human, "blind_caption": blind_caption}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset dir (data_pipelines.prepare)")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    print(json.dumps(caption_baselines(args.data, args.split)))


if __name__ == "__main__":
    main()
