"""Batched beam search (all images and beams in one tensor program) vs the same images decoded one at a time.

    python -m benchmarks.bench_beam_search [--quick] [--json PATH]

Decoder only: region features are encoded once up front, then both ways decode them with the same beam_search
function and must return the same captions. The model is randomly initialised, so every caption runs to max_len.
"""
from __future__ import annotations


import torch

from modeling import Captioner, CaptionerConfig
from modeling.beam_search import beam_search
from benchmarks.common import benchmark_parser, best_time, write_result


def main() -> None:
    parser = benchmark_parser(__doc__, "8 images, max_len 10, one timed repeat")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.images, args.max_len, args.repeats = 8, 10, 1

    torch.manual_seed(0)
    config = CaptionerConfig(vocab_size=args.vocab_size, encoder_weights="none")
    model = Captioner(config).eval()
    with torch.no_grad():
        features = model.encode(torch.randn(args.images, config.backbone_channels, 7, 7))

    def decode(batch: torch.Tensor):
        return beam_search(model.decoder, batch, args.beam_size, args.max_len, config.bos_id, config.eos_id,
                           config.pad_id)

    def batched():
        return decode(features)

    def one_at_a_time():
        return [decode(features[i:i + 1]) for i in range(args.images)]

    with torch.no_grad():
        together, alone = batched(), one_at_a_time()  # warm-up, and the two must agree
        same = all(torch.equal(together.tokens[i, : g.tokens.shape[1]], g.tokens[0]) for i, g in enumerate(alone))
        batched_s = best_time(batched, args.repeats)
        sequential_s = best_time(one_at_a_time, args.repeats)

    result = {
        "images": args.images, "beam_size": args.beam_size, "vocab_size": args.vocab_size, "max_len": args.max_len,
        "decoded_steps": together.tokens.shape[1], "threads": torch.get_num_threads(),
        "batched_images_per_s": round(args.images / batched_s, 2),
        "one_at_a_time_images_per_s": round(args.images / sequential_s, 2),
        "speedup": round(sequential_s / batched_s, 2), "same_captions": same,
    }
    print(f"beam {args.beam_size}, {args.images} images, vocab {args.vocab_size}, {result['decoded_steps']} steps, "
          f"{result['threads']} threads")
    print(f"  one image at a time : {result['one_at_a_time_images_per_s']:8.2f} images/s  (baseline)")
    print(f"  batched             : {result['batched_images_per_s']:8.2f} images/s  "
          f"speedup {result['speedup']:.2f}x (target >= 8x)  same captions: {same}")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
