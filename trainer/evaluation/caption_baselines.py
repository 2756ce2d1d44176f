"""Reference points for a split's metrics (``python -m trainer.baselines`` prints them; the report shows them): a blind
baseline, one human caption against the others, the best reference, and a results file's gap to the best reference.
The command's docstring (trainer/baselines.py) says what each one means."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from data_pipelines.shard_members import split_samples
from trainer.evaluation.coco_results import read_results, results_image_id
from trainer.evaluation.metrics import compute_caption_metrics
from trainer.evaluation.metrics.cider import cider_d
from trainer.evaluation.metrics.tokenizer import tokenize_caption


def split_captions(root, split: str) -> dict[str, list[str]]:
    """image_id -> raw captions of every sample in a prepared split (a folder or URL; reads only the .json members)."""
    return {sample.image_id: sample.captions for sample in split_samples(root, split)}


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
