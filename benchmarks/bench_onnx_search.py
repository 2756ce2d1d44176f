"""The ONNX captioner's numpy beam search over a batch of images vs the same search one image at a time, same run.

    python -m benchmarks.bench_onnx_search [--quick] [--json PATH]

A random-weight checkpoint (vocab 10k, 64 px; random weights rarely end a caption, so every image decodes all steps)
exported with ``trainer.export``; the images are encoded once, then searched with beam 5, at most 20 words: all
together (one decoder-step call per step) and one at a time (one call per image and step). Both give the same
captions (checked). Timed alternately, best of --repeats each. Needs ``showattend[export]``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.bench_serve import random_checkpoint
from benchmarks.common import best_time, search_benchmark_parser, write_result
from modeling import DecodingOptions
from trainer.export import export
from trainer.inference.numpy_search import beam_search
from trainer.inference.onnx_search import OnnxCaptioner


def main() -> None:
    parser = search_benchmark_parser(__doc__)
    args = parser.parse_args()
    if args.quick:
        args.images, args.max_len, args.repeats = 8, 10, 1

    with tempfile.TemporaryDirectory() as folder:
        checkpoint = random_checkpoint(Path(folder) / "checkpoint", args.vocab_size, 64)
        captioner = OnnxCaptioner(export(checkpoint, Path(folder) / "onnx"))
        pixels = np.random.default_rng(0).standard_normal((args.images, 3, 64, 64), dtype=np.float32)
        encoded = captioner.encode(pixels)
        options = DecodingOptions(beam_size=args.beam_size, max_len=args.max_len)

        def step(*state):
            return captioner.log_probs(*state)[:3]

        def batched():
            return beam_search(step, encoded, options, captioner.bos_id, captioner.eos_id, captioner.pad_id)

        def one_at_a_time():
            return [row for i in range(args.images) for row in beam_search(
                step, tuple(array[i:i + 1] for array in encoded), options, captioner.bos_id, captioner.eos_id,
                captioner.pad_id)]

        same = [tokens for tokens, _ in batched()] == [tokens for tokens, _ in one_at_a_time()]
        timings = {}
        for _ in range(args.repeats):  # alternate, so load on the machine hits both alike
            for name, search in (("one_at_a_time", one_at_a_time), ("batched", batched)):
                timings[name] = min(timings.get(name, float("inf")), best_time(search, 1))

    result = {"images": args.images, "beam_size": args.beam_size, "vocab_size": args.vocab_size,
              "max_len": args.max_len, "same_captions": same,
              **{f"{name}_images_per_s": round(args.images / seconds, 2) for name, seconds in timings.items()},
              "speedup": round(timings["one_at_a_time"] / timings["batched"], 2)}
    print(f"beam {args.beam_size}, {args.images} images, vocab {args.vocab_size}, max_len {args.max_len}: "
          f"one at a time {result['one_at_a_time_images_per_s']} images/s, batched {result['batched_images_per_s']} "
          f"images/s ({result['speedup']}x), same captions: {same}")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
