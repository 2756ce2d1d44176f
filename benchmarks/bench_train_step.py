"""Training step on precomputed backbone features: 5 captions per image sharing one encoder pass vs encoding the
image once per caption (the baseline), plus the cost of scheduled sampling.

    python benchmarks/bench_train_step.py [--quick] [--json PATH]

A step is forward, masked cross-entropy + doubly stochastic attention term, backward and AdamW on
(batch 32 images x 5 captions, vocab 10k, T=20 predicted words, backbone features 2048x7x7).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from modeling import Captioner, CaptionerConfig  # noqa: E402


def train_step(model, optimizer, features, captions, teacher_forcing_ratio, share_encoder_pass):
    if share_encoder_pass:
        out = model(features, captions, teacher_forcing_ratio=teacher_forcing_ratio)
    else:  # one encoder pass per caption
        repeated = features.repeat_interleave(captions.shape[1], dim=0)
        out = model(repeated, captions.flatten(0, 1), teacher_forcing_ratio=teacher_forcing_ratio)
    targets = captions[..., 1:].flatten(0, 1)
    loss = F.cross_entropy(out.logits.flatten(0, 1), targets.flatten(), ignore_index=model.config.pad_id)
    loss = loss + ((1.0 - out.alphas.sum(dim=1)) ** 2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 warm-up + 1 timed step per variant")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
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
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
