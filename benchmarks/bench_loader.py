"""Streaming train loader images/s vs a bare loop that decodes and transforms the same JPEGs (the limit).

    python -m benchmarks.bench_loader [--quick] [--json PATH]

Both sides decode every JPEG with PIL and apply the same eval transform (resize 224, center crop, normalise) in one
process; the loader (the lane loader of one process, ``data_pipelines.train_stream``) additionally shuffles,
tokenises, pads and batches. Target: loader >= 80% of the bare loop.
Each side runs 3 times, interleaved; the best run counts (shared machine).
The 2-worker figure shows what the DataLoader workers add on this machine's cores.
"""
from __future__ import annotations

import io
import json
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from benchmarks.common import benchmark_parser, write_result
from data_pipelines.manifest import read_manifest
from data_pipelines.shard_writer import ShardWriter
from data_pipelines.stream import TrainLoaderOptions
from data_pipelines.train_stream import build_lane_loader
from data_pipelines.transforms import eval_transform
from data_pipelines.vocab import Vocabulary

COLOURS = ["red", "green", "blue", "yellow", "white"]
RGB = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40),
       "white": (250, 250, 250)}


def write_bench_dataset(out: Path, num_images: int, shard_size: int = 64, size: tuple[int, int] = (340, 256)) -> Path:
    """A prepare-style dataset of drawn scenes (smooth, photo-like JPEG sizes), JPEG quality 90."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    writer = ShardWriter(out, "train", shard_size)
    for index in range(num_images):
        image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 120, 3)))
        draw = ImageDraw.Draw(image)
        colour = COLOURS[index % len(COLOURS)]
        x, y = (int(v) for v in rng.integers(0, 200, 2))
        draw.ellipse((x, y, x + 90, y + 70), fill=RGB[colour])
        jpeg = io.BytesIO()
        image.save(jpeg, "JPEG", quality=90)
        captions = [f"A {colour} circle on a dark background.", f"There is a {colour} ellipse."]
        meta = {"image_id": f"b{index:06d}", "captions": captions, "width": size[0], "height": size[1], "source": "bench"}
        writer.write(f"b{index:06d}", {"jpg": jpeg.getvalue(), "json": json.dumps(meta).encode()}, len(captions))
    shards = writer.close()
    manifest = {"splits": {"train": {"shards": [s["name"] for s in shards], "images": num_images,
                                     "captions": 2 * num_images}}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def bench_vocab() -> Vocabulary:
    return Vocabulary.build([f"a {c} circle on a dark background there is ellipse" for c in COLOURS], min_freq=1)


def bare_loop_images_per_s(root: Path, image_size: int) -> float:
    """Read every shard with tarfile, decode each JPEG and transform it: nothing else."""
    transform = eval_transform(image_size)
    count, start = 0, time.perf_counter()
    for name in read_manifest(root)["splits"]["train"]["shards"]:
        with tarfile.open(root / name) as tar:
            for member in tar:
                if member.name.endswith(".jpg"):
                    with Image.open(io.BytesIO(tar.extractfile(member).read())) as image:
                        transform(image.convert("RGB"))
                    count += 1
    return count / (time.perf_counter() - start)


def loader_samples_per_s(data, image_size: int, batch_size: int, num_workers: int) -> tuple[float, int]:
    """(samples/s, samples) of one epoch of the lane loader of one process over ``data`` (a root or sources)."""
    options = TrainLoaderOptions(batch_size=batch_size, num_workers=num_workers, image_size=image_size,
                                 captions_per_image=2)
    loader = build_lane_loader(data, bench_vocab(), options, global_batch_size=batch_size, lanes=range(1))
    count, start = 0, time.perf_counter()
    for batch in loader:
        count += batch["pixels"].shape[0]
    return count / (time.perf_counter() - start), count


def main() -> None:
    parser = benchmark_parser(__doc__, "fewer images")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    num_images, repeats = (256, 3) if args.quick else (1024, 3)
    torch.set_num_threads(1)  # the bare loop and the in-process loader both transform on one thread
    with tempfile.TemporaryDirectory() as tmp:
        root = write_bench_dataset(Path(tmp) / "data", num_images)
        loader_samples_per_s(root, args.image_size, args.batch_size, 0)  # warm-up: page cache, lazy imports
        runs = {"bare": [], "loader": [], "workers": []}
        for _ in range(repeats):  # interleaved, best of each: the machine is shared, so take the least disturbed run
            runs["bare"].append(bare_loop_images_per_s(root, args.image_size))
            runs["loader"].append(loader_samples_per_s(root, args.image_size, args.batch_size, 0)[0])
            runs["workers"].append(loader_samples_per_s(root, args.image_size, args.batch_size, 2)[0])
        bare, streamed, streamed_workers = (max(runs[name]) for name in ("bare", "loader", "workers"))
    result = {"images": num_images, "image_size": args.image_size, "bare_loop_images_per_s": round(bare, 1),
              "loader_images_per_s": round(streamed, 1), "loader_2_workers_images_per_s": round(streamed_workers, 1),
              "loader_vs_bare": round(streamed / bare, 3), "target_loader_vs_bare": 0.8}
    print(f"bare decode+transform loop: {bare:8.1f} images/s (the limit, 1 process)")
    print(f"streaming loader, 0 workers: {streamed:8.1f} images/s = {streamed / bare:.0%} of the limit (target >= 80%)")
    print(f"streaming loader, 2 workers: {streamed_workers:8.1f} images/s")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
