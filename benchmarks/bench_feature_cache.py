"""Training-epoch time on the feature cache vs on images (224 px), frozen backbone, CPU.

    python -m benchmarks.bench_feature_cache [--quick] [--json PATH]

One epoch = stream the train split, Captioner forward + masked cross-entropy + backward + AdamW step on the trainable
parameters. On images the frozen ResNet-50 runs every step; on the cache it ran once, in `data_pipelines.features`
(its one-off time is reported too, with the number of epochs after which the cache has paid for itself).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from benchmarks.bench_loader import bench_vocab, write_bench_dataset
from benchmarks.common import benchmark_parser, write_result
from data_pipelines.features import extract_features
from data_pipelines.stream import TrainLoaderOptions
from data_pipelines.stream_samples import model_input
from data_pipelines.train_stream import build_lane_loader
from modeling import Captioner, CaptionerConfig
from trainer.training.losses import caption_loss


def train_epoch_seconds(model: Captioner, loader, pad_id: int) -> float:
    """Wall time of one epoch of forward + loss + backward + AdamW step."""
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    model.train()
    start = time.perf_counter()
    for batch in loader:
        captions = batch["captions"]
        output = model(model_input(batch), captions)
        loss = caption_loss(output.logits, output.alphas, captions.flatten(0, 1), pad_id).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def one_process_loader(data: Path, vocab, options: TrainLoaderOptions):
    """The lane loader of one process training the whole global batch in one micro-batch."""
    return build_lane_loader(data, vocab, options, global_batch_size=options.batch_size, lanes=range(1))


def main() -> None:
    parser = benchmark_parser(__doc__, "fewer images")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    num_images = 32 if args.quick else 128
    vocab = bench_vocab()
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=len(vocab), encoder_weights="none"))
    options = dict(batch_size=args.batch_size, num_workers=0, image_size=args.image_size, captions_per_image=1)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_bench_dataset(Path(tmp) / "data", num_images, shard_size=16)
        start = time.perf_counter()
        extract_features(data, Path(tmp) / "feats", "none", args.image_size, batch_size=args.batch_size,
                         show_progress=False)
        extract_seconds = time.perf_counter() - start
        cache_loader = one_process_loader(data, vocab, TrainLoaderOptions(features_root=Path(tmp) / "feats", **options))
        train_epoch_seconds(model, cache_loader, vocab.pad_id)  # warm-up (allocator, lazy init)
        cache_seconds = min(train_epoch_seconds(model, cache_loader, vocab.pad_id) for _ in range(3))
        image_seconds = train_epoch_seconds(model, one_process_loader(data, vocab, TrainLoaderOptions(**options)),
                                            vocab.pad_id)
    ratio = image_seconds / cache_seconds
    result = {"images": num_images, "image_size": args.image_size, "batch_size": args.batch_size,
              "image_epoch_s": round(image_seconds, 3), "feature_cache_epoch_s": round(cache_seconds, 3),
              "speedup": round(ratio, 1), "feature_extraction_s": round(extract_seconds, 3),
              "break_even_epochs": round(extract_seconds / max(image_seconds - cache_seconds, 1e-9), 2)}
    print(f"epoch on images ({args.image_size} px): {image_seconds:7.2f} s  ({num_images} images, frozen backbone)")
    print(f"epoch on feature cache:     {cache_seconds:7.2f} s  -> {ratio:.1f}x faster (expected > 10x)")
    print(f"one-off feature extraction: {extract_seconds:7.2f} s  (pays off after "
          f"{result['break_even_epochs']} epochs)")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
