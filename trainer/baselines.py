"""Reference points for a split's metrics: a blind baseline, one human caption against the others, and the best
reference; optionally where a model's results fall short of the best reference.

    python -m trainer.baselines --data OUT [--split test] [--results RESULTS_JSON ...]

- blind: the most common training caption (after tokenization) predicted for every image; what a model that ignores
  the image can reach.
- human: each image's first reference caption scored against its remaining references (one fewer reference than a
  model gets, as in the usual "human" rows of captioning tables); images with one reference are left out, and when
  every image has one the row is null with a line in "notes".
- best_reference: each image's reference with the highest CIDEr-D against all its references, as a model's caption
  would be scored: what a model that always says the right thing in the references' most common wording reaches
  (other captions can score higher, but rarely do).
- --results (COCO results JSON of trainer.evaluate_checkpoint): each file's CIDEr-D gap to best_reference, split into
  "gap_on_references" (images whose caption is one of their references, just not the best one: wording) and
  "gap_on_other_captions" (captions that are none of them: wrong content, or a wording no reference uses). On the
  synthetic presets self-critical training closes most of the first and little of the second.
Prints one JSON object {"blind": {...}, "human": {...} | null, "best_reference": {...}, "blind_caption": "...",
"results": {FILE: {...}}, "notes": [...]} on the last line.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from trainer.evaluation.caption_baselines import caption_baselines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="prepared dataset: directory or URL (data_pipelines.prepare)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--results", type=Path, nargs="*", default=[],
                        help="COCO results JSON(s) of this split (trainer.evaluate_checkpoint --out): their gap to the "
                             "best reference, on captions that are references and on the others")
    args = parser.parse_args()
    try:
        print(json.dumps(caption_baselines(args.data, args.split, args.results)))
    except (OSError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
