"""Peak memory of a short training run as the dataset grows 10x: streaming must keep it flat.

    python -m benchmarks.bench_memory [--quick] [--json PATH]

Two `trainer/train.py` runs with the same steps and batch, on N and 10N synthetic 128 px images (one DataLoader
worker). Peak memory is the largest RSS of the trainer plus the unique set size (USS) of its children (the forked
DataLoader worker's copy-on-write pages counted once), sampled every 50 ms with psutil; median over repeats.
The baseline is the small dataset; the ratio large / small should stay near 1.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.common import benchmark_parser, prepared_synthetic_dataset, write_result

REPO = Path(__file__).resolve().parents[1]


def make_dataset(root: Path, num_images: int, image_size: int) -> Path:
    return prepared_synthetic_dataset(root, num_images, image_size, shard_size=50, workers=2)


def tree_memory(process: psutil.Process) -> int:
    """RSS of the trainer plus the unique (USS) pages of its children: pages a forked worker shares are counted once."""
    total = process.memory_info().rss
    for member in process.children(recursive=True):
        try:
            total += member.memory_full_info().uss
        except psutil.NoSuchProcess:
            pass
    return total


def peak_memory_of_run(data: Path, output_dir: Path, steps: int, image_size: int) -> int:
    overrides = [f"data.root={data}", f"output_dir={output_dir}", f"data.image_size={image_size}",
                 "model.encoder_weights=none", "train.global_batch_size=8", f"train.max_steps={steps}",
                 "data.num_workers=1", "eval.every_steps=0", "eval.max_len=2", "eval.batch_size=8",
                 "checkpoint.every_steps=0",
                 "logging.every_steps=5"]
    process = psutil.Popen([sys.executable, str(REPO / "trainer" / "train.py"), *overrides], cwd=REPO,
                           env={**os.environ, "OMP_NUM_THREADS": "2"}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_memory(process))
        time.sleep(0.05)
    if process.returncode != 0:
        raise RuntimeError(f"training run failed:\n{process.stderr.read().decode()[-3000:]}")
    return peak


def main() -> None:
    parser = benchmark_parser(__doc__, "100 vs 1,000 images, fewer steps")
    parser.add_argument("--image-size", type=int, default=128)
    args = parser.parse_args()
    small, steps, repeats = (100, 10, 2) if args.quick else (300, 20, 2)
    sizes = (small, 10 * small)
    peaks: dict[int, list[int]] = {n: [] for n in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        data = {n: make_dataset(Path(tmp) / str(n), n, args.image_size) for n in sizes}
        for repeat in range(repeats):  # interleaved, so drifts in machine load hit both sizes alike
            for n in sizes:
                peaks[n].append(peak_memory_of_run(data[n], Path(tmp) / f"run{n}_{repeat}", steps, args.image_size))
    mib = {n: statistics.median(values) / 2**20 for n, values in peaks.items()}
    result = {"images_small": small, "images_large": 10 * small, "peak_rss_mib_small": mib[small],
              "peak_rss_mib_large": mib[10 * small], "ratio_large_over_small": mib[10 * small] / mib[small],
              "decoded_large_dataset_mib": 10 * small * 0.8 * 3 * args.image_size ** 2 * 4 / 2**20, "steps": steps,
              "repeats": repeats}
    print(f"peak memory with {small} images: {mib[small]:.0f} MiB; with {10 * small}: {mib[10 * small]:.0f} MiB "
          f"(ratio {result['ratio_large_over_small']:.3f}; holding the large train split decoded would take "
          f"{result['decoded_large_dataset_mib']:.0f} MiB)")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
