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
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from data_pipelines.data_root import DataRoot
from data_pipelines.manifest import read_manifest
from data_pipelines.shard_members import sample_meta, shard_members
from trainer.evaluate_checkpoint import results_image_id
from trainer.evaluation.metrics import compute_caption_metrics
from trainer.evaluation.metrics.cider import cider_d
from trainer.evaluation.metrics.tokenizer import tokenize_caption


def split_captions(root, split: str) -> dict[str, list[str]]:
    """image_id -> raw captions of every sample in a prepared split (a folder or URL; reads only the .json members)."""
    root = DataRoot(root)
    manifest = read_manifest(root)
    if split not in manifest["splits"]:
        raise ValueError(f"{root.join('manifest.json')} has no split {split!r}; it has {sorted(manifest['splits'])}")
    captions = {}
    for shard in manifest["splits"][split]["shards"]:
        for key, _, payload in shard_members(root.join(shard), ("json",)):
            sample = sample_meta(payload, f"{root.join(shard)}: {key}.json", key)
            captions[sample["image_id"]] = sample["captions"]
    return captions


class BestReferences(NamedTuple):
    """Each image's best reference (raw caption, by image id), its CIDEr-D, and every image's tokenized references
    (both in the order of ``captions``)."""

    captions: dict[str, str]
    scores: np.ndarray
    tokenized: list[list[str]]


def best_references(references: dict[str, list[str]]) -> BestReferences:
    """The reference of each image with the highest CIDEr-D against all of that image's references (first on ties)."""
    image_ids = list(references)
    tokenized = [[tokenize_caption(ref) for ref in references[image_id]] for image_id in image_ids]
    most = max(len(refs) for refs in tokenized)
    scores = np.full((len(image_ids), most), -np.inf)
    for k in range(most):  # every image's k-th reference (or its last), scored as a model's caption would be
        scores[:, k] = cider_d([refs[min(k, len(refs) - 1)] for refs in tokenized], tokenized)[1]
    best = scores.argmax(axis=1)
    captions = {image_id: references[image_id][min(int(k), len(references[image_id]) - 1)]
                for image_id, k in zip(image_ids, best)}
    return BestReferences(captions, scores[np.arange(len(image_ids)), best], tokenized)


def gap_to_best_reference(predictions: dict[str, str], best: BestReferences) -> dict:
    """Mean CIDEr-D of ``predictions`` and its gap to the best references', split by whether each caption is one of
    its image's references or none of them; each part is its images' gaps summed / all images, so the two add up to
    the gap."""
    captions = [tokenize_caption(predictions[image_id]) for image_id in best.captions]
    model = cider_d(captions, best.tokenized)[1]
    is_reference = np.array([caption in refs for caption, refs in zip(captions, best.tokenized)])
    gap = best.scores - model
    return {"CIDEr": float(model.mean()), "best_reference_CIDEr": float(best.scores.mean()),
            "share_of_captions_that_are_references": float(is_reference.mean()),
            "gap_on_references": float(gap[is_reference].sum() / len(gap)),
            "gap_on_other_captions": float(gap[~is_reference].sum() / len(gap))}


def read_results(path: Path) -> dict[str, str]:
    """str(image_id) -> caption of a COCO results JSON ([{"image_id", "caption", ...}, ...]; ids as
    ``results_image_id`` writes them)."""
    try:
        rows = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON ({error})") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) and {"image_id", "caption"} <= set(row)
                                             for row in rows):
        raise ValueError(f'{path} is not a COCO results list: expected [{{"image_id": ..., "caption": ...}}, ...]')
    return {str(row["image_id"]): row["caption"] for row in rows}


def caption_baselines(root, split: str = "test", results: list[Path] = ()) -> dict:
    """Blind, human and best-reference metrics on ``split`` of the prepared dataset at ``root``, and each results
    file's gap to the best reference."""
    train = split_captions(root, "train")
    counts = Counter(tokenize_caption(caption) for captions in train.values() for caption in captions)
    blind_caption = counts.most_common(1)[0][0]
    references = split_captions(root, split)
    blind = compute_caption_metrics({image_id: blind_caption for image_id in references}, references)
    several = {image_id: refs for image_id, refs in references.items() if len(refs) > 1}
    human = compute_caption_metrics({image_id: refs[0] for image_id, refs in several.items()},
                                    {image_id: refs[1:] for image_id, refs in several.items()}) if several else None
    notes = [] if several else [f"no human row: every image of split {split!r} has one reference (it needs two)"]
    best = best_references(references)
    gaps = {}
    for path in results:
        captions = read_results(path)
        predictions = {image_id: captions[key] for image_id in references
                       if (key := str(results_image_id(image_id))) in captions}
        missing = sorted(set(references) - set(predictions))
        if missing:
            raise ValueError(f"{path} has no caption for {len(missing)} {split} images, e.g. {missing[:3]}")
        gaps[str(path)] = gap_to_best_reference(predictions, best)
    return {"blind": blind, "human": human, "best_reference": compute_caption_metrics(best.captions, references),
            "blind_caption": blind_caption, "results": gaps, "notes": notes}


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
