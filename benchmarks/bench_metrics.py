"""Our CIDEr-D and BLEU vs pycocoevalcap 1.2 on synthetic captions (default 5000 images x 5 references).

    python -m benchmarks.bench_metrics [--quick] [--json PATH]

Both sides score the same tokenized strings; prints seconds, speed-up and the largest absolute difference.
"""
from __future__ import annotations

import random
import time

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from benchmarks.common import benchmark_parser, write_result
from trainer.evaluation.metrics import cider_d, corpus_bleu


def synthetic_captions(num_images: int, refs_per_image: int, seed: int = 0):
    """Captions of 6-14 words from a Zipf-like vocabulary (frequent words shared, so n-grams overlap)."""
    rng = random.Random(seed)
    vocabulary = [f"w{index}" for index in range(5000)]
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]

    def sentence() -> str:
        return " ".join(rng.choices(vocabulary, weights, k=rng.randint(6, 14)))

    return [sentence() for _ in range(num_images)], [[sentence() for _ in range(refs_per_image)]
                                                     for _ in range(num_images)]


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = benchmark_parser(__doc__, "1000 images instead of 5000")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--refs", type=int, default=5)
    args = parser.parse_args()
    num_images = args.images or (1000 if args.quick else 5000)
    candidates, references = synthetic_captions(num_images, args.refs)
    gts = dict(enumerate(references))
    res = {index: [caption] for index, caption in enumerate(candidates)}

    (coco_cider, coco_cider_per_image), coco_cider_seconds = timed(Cider().compute_score, gts, res)
    (our_cider, our_cider_per_image), our_cider_seconds = timed(cider_d, candidates, references)
    (coco_bleu, _), coco_bleu_seconds = timed(lambda: Bleu(4).compute_score(gts, res, verbose=0))
    our_bleu, our_bleu_seconds = timed(corpus_bleu, candidates, references)

    result = {
        "images": num_images, "refs_per_image": args.refs,
        "cider_coco_s": coco_cider_seconds, "cider_ours_s": our_cider_seconds,
        "cider_speedup": coco_cider_seconds / our_cider_seconds,
        "cider_max_abs_diff": float(np.abs(np.asarray(coco_cider_per_image) - our_cider_per_image).max()),
        "cider_value": float(our_cider),
        "bleu_coco_s": coco_bleu_seconds, "bleu_ours_s": our_bleu_seconds,
        "bleu_speedup": coco_bleu_seconds / our_bleu_seconds,
        "bleu_max_abs_diff": max(abs(a - b) for a, b in zip(coco_bleu, our_bleu)),
        "bleu_4_value": float(our_bleu[3]),
    }
    print(f"{num_images} images x {args.refs} refs")
    print(f"CIDEr-D  pycocoevalcap {coco_cider_seconds:7.3f} s  ours {our_cider_seconds:7.3f} s  "
          f"speed-up {result['cider_speedup']:5.1f}x  max |diff| per image {result['cider_max_abs_diff']:.2e}")
    print(f"BLEU-1-4 pycocoevalcap {coco_bleu_seconds:7.3f} s  ours {our_bleu_seconds:7.3f} s  "
          f"speed-up {result['bleu_speedup']:5.1f}x  max |diff| {result['bleu_max_abs_diff']:.2e}")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
