"""Stage-2 training (model.finetune_from=layer4) from the cached frozen prefix vs from images end to end, CPU.

    python -m benchmarks.bench_finetune [--quick] [--image-size 128] [--batch-size 16] [--json PATH]

One epoch = stream the train split, Captioner forward + masked cross-entropy + backward + AdamW step on the trainable
parameters (layer4 included). From images, the frozen stem and layer1-3 run every step; from the cache through layer3
(`data_pipelines.features --through layer3`) they ran once, and a step runs layer4 and the decoder only. The frozen
stage-1 step on the whole-backbone cache is measured too, as the scale: what fine-tuning costs over it.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from benchmarks.bench_feature_cache import one_process_loader, train_epoch_seconds
from benchmarks.bench_loader import bench_vocab, write_bench_dataset
from benchmarks.common import benchmark_parser, write_result
from data_pipelines.features import extract_features
from data_pipelines.stream import TrainLoaderOptions
from modeling import Captioner, CaptionerConfig


def best_epoch_seconds(model: Captioner, loader, pad_id: int, repeats: int) -> float:
    """The fastest of ``repeats`` epochs after one warm-up epoch (allocator, lazy initialisation)."""
    train_epoch_seconds(model, loader, pad_id)
    return min(train_epoch_seconds(model, loader, pad_id) for _ in range(repeats))


def extraction_seconds(data: Path, out: Path, image_size: int, batch_size: int, through: str) -> float:
    start = time.perf_counter()
    extract_features(data, out, "none", image_size, batch_size=batch_size, show_progress=False, through=through)
    return time.perf_counter() - start


def main() -> None:
    parser = benchmark_parser(__doc__, "fewer images and repeats")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    num_images, repeats = (32, 1) if args.quick else (64, 2)
    vocab = bench_vocab()
    models = {}
    for finetune_from in ("none", "layer4"):
        torch.manual_seed(0)
        models[finetune_from] = Captioner(CaptionerConfig(vocab_size=len(vocab), encoder_weights="none",
                                                          finetune_from=finetune_from))
    options = dict(batch_size=args.batch_size, num_workers=0, image_size=args.image_size, captions_per_image=1)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_bench_dataset(Path(tmp) / "data", num_images, shard_size=16)
        prefix_extract_s = extraction_seconds(data, Path(tmp) / "layer3", args.image_size, args.batch_size, "layer3")
        extraction_seconds(data, Path(tmp) / "layer4", args.image_size, args.batch_size, "layer4")
        loaders = {source: one_process_loader(data, vocab, TrainLoaderOptions(features_root=root, **options))
                   for source, root in (("images", None), ("layer3", Path(tmp) / "layer3"),
                                        ("layer4", Path(tmp) / "layer4"))}
        seconds = {"stage2_from_prefix_cache": best_epoch_seconds(models["layer4"], loaders["layer3"], vocab.pad_id,
                                                                  repeats),
                   "stage2_from_images": best_epoch_seconds(models["layer4"], loaders["images"], vocab.pad_id, repeats),
                   "stage1_frozen_cache": best_epoch_seconds(models["none"], loaders["layer4"], vocab.pad_id, repeats)}
    steps = num_images // args.batch_size
    result = {"images": num_images, "image_size": args.image_size, "batch_size": args.batch_size,
              "threads": torch.get_num_threads(),
              **{f"{name}_images_per_s": round(num_images / value, 2) for name, value in seconds.items()},
              **{f"{name}_s_per_step": round(value / steps, 3) for name, value in seconds.items()},
              "prefix_cache_speedup": round(seconds["stage2_from_images"] / seconds["stage2_from_prefix_cache"], 2),
              "stage2_cost_over_stage1": round(seconds["stage2_from_prefix_cache"] / seconds["stage1_frozen_cache"], 2),
              "prefix_extraction_s": round(prefix_extract_s, 3),
              "break_even_epochs": round(prefix_extract_s / max(seconds["stage2_from_images"]
                                                                - seconds["stage2_from_prefix_cache"], 1e-9), 2)}
    for name in seconds:
        print(f"{name:26s} {result[f'{name}_images_per_s']:8.2f} images/s  {result[f'{name}_s_per_step']:.3f} s/step")
    print(f"stage 2 from the layer3 cache is {result['prefix_cache_speedup']}x images end to end; it costs "
          f"{result['stage2_cost_over_stage1']}x a frozen stage-1 step; the cache pays for itself after "
          f"{result['break_even_epochs']} epochs ({args.image_size} px, batch {args.batch_size}, {num_images} images)")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
