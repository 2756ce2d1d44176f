"""What the decoding controls cost: plain beam search vs the same search with every control on, in the same run.

    python -m benchmarks.bench_decoding_controls [--quick] [--json PATH]

Decoder only (features encoded once), random-init decoder, beam 5, vocab 10k. "All controls": length penalty 0.7,
min_len 5, no_repeat_ngram_size 3, <unk> suppressed, n_best 5. Both are timed alternately (best of --repeats each).
Target: <= 10% overhead. Sampling (top-k 50, top-p 0.9, n_best 5) is reported against greedy search for reference.
"""
from __future__ import annotations

import torch

from benchmarks.common import best_time, search_benchmark_parser, write_result
from modeling import Captioner, CaptionerConfig, DecodingOptions

UNK_ID = 3


def main() -> None:
    parser = search_benchmark_parser(__doc__)
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
        features = torch.randn(args.images, config.backbone_channels, 7, 7)
        features = model.encode(features)
    model.encoder = torch.nn.Identity()  # decode the encoded features directly
    plain = DecodingOptions(beam_size=args.beam_size, max_len=args.max_len)
    controlled = plain.replace(length_penalty=0.7, min_len=5, no_repeat_ngram_size=3, suppress_ids=(UNK_ID,),
                               n_best=args.beam_size)
    greedy = plain.replace(beam_size=1)
    sampled = DecodingOptions(sample=True, max_len=args.max_len, top_k=50, top_p=0.9, n_best=args.beam_size)

    timings = {}
    for name, options in (("plain", plain), ("controls", controlled), ("greedy", greedy), ("sampling", sampled)):
        model.generate(features, options)  # warm-up
    for _ in range(args.repeats):  # alternate, so load on the machine hits both alike
        for name, options in (("plain", plain), ("controls", controlled), ("greedy", greedy), ("sampling", sampled)):
            seconds = best_time(lambda options=options: model.generate(features, options), 1)
            timings[name] = min(timings.get(name, float("inf")), seconds)

    result = {"images": args.images, "beam_size": args.beam_size, "vocab_size": args.vocab_size,
              "max_len": args.max_len, "threads": torch.get_num_threads(),
              **{f"{name}_images_per_s": round(args.images / seconds, 2) for name, seconds in timings.items()},
              "controls_overhead": round(timings["controls"] / timings["plain"] - 1, 4),
              "sampling_vs_greedy": round(timings["sampling"] / timings["greedy"], 2)}
    print(f"beam {args.beam_size}, {args.images} images, vocab {args.vocab_size}, max_len {args.max_len}, "
          f"{result['threads']} threads")
    print(f"  plain beam search : {result['plain_images_per_s']:8.2f} images/s  (baseline)")
    print(f"  every control on  : {result['controls_images_per_s']:8.2f} images/s  "
          f"overhead {100 * result['controls_overhead']:+.1f}% (target <= 10%)")
    print(f"  greedy / sampling : {result['greedy_images_per_s']:8.2f} / {result['sampling_images_per_s']:8.2f} "
          f"images/s (sampling n_best {args.beam_size}, top-k 50, top-p 0.9)")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
