"""Training step on precomputed backbone features: 5 captions per image sharing one encoder pass vs encoding the
image once per caption (the baseline), plus the cost of scheduled sampling.

    python -m benchmarks.bench_train_step [--quick] [--json PATH]

A step is forward, masked cross-entropy + doubly stochastic attention term, backward and AdamW on
(batch 32 images x 5 captions, vocab 10k, T=20 predicted words, backbone features 2048x7x7).
"""
from __future__ import annotations

import time

import torch

from benchmarks.common import benchmark_parser, write_result
from modeling import Captioner, CaptionerConfig
from trainer.training.losses import caption_loss


def train_step(model, optimizer, features, captions, teacher_forcing_ratio, share_encoder_pass):
    if share_encoder_pass:
        out = model(features, captions, teacher_forcing_ratio=teacher_forcing_ratio)
    else:  # one encoder pass per caption
        repeated = features.repeat_interleave(captions.shape[1], dim=0)
        out = model(repeated, captions.flatten(0, 1), teacher_forcing_ratio=teacher_forcing_ratio)
    loss = caption_loss(out.logits, out.alphas, captions.flatten(0, 1), model.config.pad_id).total
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def main() -> None:
    parser = benchmark_parser(__doc__, "1 warm-up + 1 timed step per variant")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--captions-per-image", type=int, default=5)
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=20, help="predicted positions per caption (T - 1)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.steps = 1

    torch.manual_seed(0)
    config = CaptionerConfig(vocab_size=args.vocab_size, encoder_weights="none")
    model = Captioner(config).train()
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    features = torch.randn(args.images, config.backbone_channels, 7, 7)
    captions = torch.randint(4, args.vocab_size, (args.images, args.captions_per_image, args.words + 1))
    captions[..., 0] = config.bos_id
    lengths = torch.randint(8, args.words + 1, (args.images, args.captions_per_image, 1))
    positions = torch.arange(args.words + 1)
    captions = torch.where(positions == lengths, config.eos_id, captions)
    captions = torch.where(positions > lengths, config.pad_id, captions)
    samples = args.images * args.captions_per_image

    variants = {
        "one_encoder_pass_per_caption": dict(teacher_forcing_ratio=1.0, share_encoder_pass=False),
        "shared_encoder_pass": dict(teacher_forcing_ratio=1.0, share_encoder_pass=True),
        "shared_encoder_pass_scheduled_sampling_0.75": dict(teacher_forcing_ratio=0.75, share_encoder_pass=True),
    }
    result = {"images": args.images, "captions_per_image": args.captions_per_image, "vocab_size": args.vocab_size,
              "words": args.words, "threads": torch.get_num_threads()}
    print(f"train step: {args.images} images x {args.captions_per_image} captions, vocab {args.vocab_size}, "
          f"{args.words} words, AdamW, {result['threads']} threads")
    for name, options in variants.items():
        train_step(model, optimizer, features, captions, **options)  # warm-up
        started = time.perf_counter()
        for _ in range(args.steps):
            train_step(model, optimizer, features, captions, **options)
        step_s = (time.perf_counter() - started) / args.steps
        result[f"{name}_samples_per_s"] = round(samples / step_s, 2)
        result[f"{name}_step_s"] = round(step_s, 3)
        print(f"  {name:44s}: {samples / step_s:8.2f} captions/s  ({step_s:.3f} s/step)")
    result["speedup_shared_vs_per_caption"] = round(
        result["shared_encoder_pass_samples_per_s"] / result["one_encoder_pass_per_caption_samples_per_s"], 2)
    print(f"  shared encoder pass vs per caption: {result['speedup_shared_vs_per_caption']:.2f}x")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
