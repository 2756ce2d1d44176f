"""The training loader on a weighted mixture of two prepared datasets vs on one dataset holding the same images.

    python -m benchmarks.bench_mixture [--quick] [--json PATH] [--image-size 224] [--workers 0]

One dataset of drawn scenes (``bench_loader.write_bench_dataset``) is read as it is (the one-source loader) and as a
1:1 mixture of its two halves (``data.sources``: two folders holding hard links to half of its shards each, so both
sides read the same bytes). Both read one epoch of the lane loader of one process (same images, global batch, workers
and transform); the mixture draws each sample's source and keeps a shuffle buffer per source. Target: the mixture
>= 0.95x the one-source samples/s. Each side runs 4 times, interleaved in alternating order; the best run counts
(shared machine).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from benchmarks.bench_loader import loader_samples_per_s, write_bench_dataset
from benchmarks.common import benchmark_parser, write_result
from data_pipelines.data_sources import DataSource
from data_pipelines.manifest import read_manifest

SHARD_SIZE = 64  # the image counts below are multiples of twice this: both halves hold full shards only


def split_in_halves(root: Path, out: Path) -> list[DataSource]:
    """Two prepared datasets ``out/half_0``, ``out/half_1`` whose shards are hard links to alternate shards of
    ``root`` (whose shards all hold ``SHARD_SIZE`` images)."""
    entry = read_manifest(root)["splits"]["train"]
    sources = []
    for half in range(2):
        folder = out / f"half_{half}"
        folder.mkdir(parents=True)
        names = entry["shards"][half::2]
        for name in names:
            os.link(root / name, folder / name)
        images = SHARD_SIZE * len(names)
        (folder / "manifest.json").write_text(json.dumps({"splits": {"train": {"shards": names, "images": images,
                                                                               "captions": 2 * images}}}))
        sources.append(DataSource(str(folder), 1.0, f"half_{half}"))
    return sources


def main() -> None:
    parser = benchmark_parser(__doc__, "fewer images")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of both loaders")
    args = parser.parse_args()
    num_images, repeats = (512, 4) if args.quick else (2048, 4)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_bench_dataset(Path(tmp) / "data", num_images, SHARD_SIZE)
        sources = split_in_halves(root, Path(tmp) / "halves")
        loader_samples_per_s(root, args.image_size, args.batch_size, args.workers)  # warm-up: page cache, lazy imports
        runs: dict[str, list[float]] = {"one_source": [], "mixture": []}
        samples = {}
        sides = [("one_source", root), ("mixture", sources)]
        for repeat in range(repeats):  # interleaved, best of each (the machine is shared: the least disturbed run);
            for name, data in sides if repeat % 2 == 0 else sides[::-1]:  # the order alternates: no side always first
                rate, samples[name] = loader_samples_per_s(data, args.image_size, args.batch_size, args.workers)
                runs[name].append(rate)
    one, mixed = max(runs["one_source"]), max(runs["mixture"])
    result = {"images": num_images, "image_size": args.image_size, "workers": args.workers,
              "samples_per_epoch": samples, "one_source_samples_per_s": round(one, 1),
              "mixture_samples_per_s": round(mixed, 1), "mixture_vs_one_source": round(mixed / one, 3),
              "target_mixture_vs_one_source": 0.95, "load_average": round(os.getloadavg()[0], 1)}
    print(f"one-source loader: {one:8.1f} samples/s ({samples['one_source']} samples an epoch)")
    print(f"1:1 mixture of its halves: {mixed:8.1f} samples/s = {mixed / one:.3f}x (target >= 0.95x); load average "
          f"{result['load_average']}")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
