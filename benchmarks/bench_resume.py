"""Cost of resuming at 90% of an epoch: tar-member-level skip vs decode-and-skip, as fractions of reading the epoch.

    python -m benchmarks.bench_resume [--quick] [--json PATH]

Three measurements on the same JPEG shards (340x256, transformed to 224 px) with the lane loader
(data_pipelines.train_stream), in one process (num_workers=0), each repeated 3 times interleaved; the best run counts
(shared machine):
  epoch            - the loader reads and decodes the whole epoch;
  decode_and_skip  - a naive resume, at the cost of the pre-issue-12 one: the loader built from step 0 decodes every
                     batch and the loop drops those of the consumed steps; time until the first batch after the
                     resume point;
  member_skip      - the loader built with start_step: consumed samples dropped as raw tar members; time until
                     the first batch after the resume point (that batch's decode included).
Target: member_skip / epoch < 0.10.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks.bench_loader import bench_vocab, write_bench_dataset
from benchmarks.common import benchmark_parser, write_result
from data_pipelines.stream import TrainLoaderOptions
from data_pipelines.train_stream import build_lane_loader

IMAGE_SIZE, GLOBAL_BATCH, MICRO_BATCH = 224, 64, 32


def seconds_to_batch(loader, index: int) -> float:
    """Seconds from iterating ``loader`` until its batch ``index`` is in hand."""
    start = time.perf_counter()
    for position, _ in enumerate(loader):
        if position == index:
            return time.perf_counter() - start
    raise ValueError(f"loader has no batch {index}")


def measure(root: Path, resume_step: int) -> dict:
    vocab, lanes = bench_vocab(), range(0, GLOBAL_BATCH // MICRO_BATCH)
    options = TrainLoaderOptions(batch_size=MICRO_BATCH, image_size=IMAGE_SIZE, captions_per_image=2, num_workers=0)
    epoch = build_lane_loader(root, vocab, options, GLOBAL_BATCH, lanes)
    naive = build_lane_loader(root, vocab, options, GLOBAL_BATCH, lanes)  # from step 0, the consumed steps dropped
    fast = build_lane_loader(root, vocab, options, GLOBAL_BATCH, lanes, start_step=resume_step)
    return {"epoch": seconds_to_batch(epoch, len(epoch) - 1),
            "decode_and_skip": seconds_to_batch(naive, resume_step * len(lanes)),  # first micro-batch of resume_step
            "member_skip": seconds_to_batch(fast, 0)}


def main() -> None:
    args = benchmark_parser(__doc__, "640 images instead of 2,560").parse_args()
    num_images = 640 if args.quick else 2560
    steps = num_images // GLOBAL_BATCH
    resume_step = (9 * steps) // 10
    with tempfile.TemporaryDirectory() as tmp:
        root = write_bench_dataset(Path(tmp) / "data", num_images)
        runs = [measure(root, resume_step) for _ in range(3)]
    best = {name: min(run[name] for run in runs) for name in runs[0]}
    result = {"images": num_images, "steps_per_epoch": steps, "resume_step": resume_step,
              "epoch_s": best["epoch"], "decode_and_skip_s": best["decode_and_skip"],
              "member_skip_s": best["member_skip"],
              "decode_and_skip_fraction_of_epoch": best["decode_and_skip"] / best["epoch"],
              "member_skip_fraction_of_epoch": best["member_skip"] / best["epoch"]}
    print(json.dumps(result, indent=1))
    write_result(result, args.json)


if __name__ == "__main__":
    main()
