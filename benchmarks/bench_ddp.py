"""Training throughput of 2-process CPU DDP (1 thread each) vs 1 process (2 threads, and 1 thread) on the same 2 cores.

    python -m benchmarks.bench_ddp [--quick] [--json PATH]

All runs are real `trainer/train.py` runs on 64 px synthetic images with a frozen random ResNet-50 and the default
decoder sizes, the same batch per process (DDP processes twice the images per step). `--input features` (default,
the demo's path) trains on a feature cache built first; `--input images` runs the backbone in every step. Throughput is the trainer's logged
`train/samples_per_s` (images/s over all ranks), median over the logged intervals after the first two (warm-up),
best of the repeats. The speedup is against the faster single-process variant (on a busy machine 2 threads can lose).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import benchmark_parser, prepared_synthetic_dataset, write_result

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_dataset(root: Path, num_images: int, image_size: int, features: bool) -> list[str]:
    """Synthetic images prepared into shards of 10 (enough for 2 ranks), optionally a feature cache; the overrides."""
    prepared = prepared_synthetic_dataset(root, num_images, image_size, shard_size=10, features=features)
    return [f"data.root={prepared}"] + ([f"data.features={root / 'features'}"] if features else [])


def throughput(launcher: list[str], processes: int, threads: int, data: list[str], output_dir: Path, steps: int,
               batch_size: int, image_size: int) -> float:
    overrides = [*data, f"output_dir={output_dir}", f"data.image_size={image_size}",
                 "model.encoder_weights=none", f"train.global_batch_size={batch_size * processes}",
                 f"train.max_steps={steps}", "data.num_workers=0", "logging.every_steps=2", "eval.every_steps=0",
                 "eval.max_len=2", f"checkpoint.every_steps={steps * 10}", "checkpoint.keep_last=1"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run([*launcher, str(REPO / "trainer" / "train.py"), *overrides], cwd=REPO, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"training run failed:\n{result.stderr[-3000:]}")
    records = [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]
    rates = [r["train/samples_per_s"] for r in records if "train/samples_per_s" in r][2:]
    return statistics.median(rates)


def main() -> None:
    parser = benchmark_parser(__doc__, "fewer steps, one repeat")
    parser.add_argument("--batch-size", type=int, default=16, help="images per process per step")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--input", choices=["features", "images"], default="features")
    args = parser.parse_args()
    steps, repeats = (10, 1) if args.quick else (24, 2)
    one_process = [sys.executable]
    two_processes = [str(BIN / "accelerate"), "launch", "--config_file", str(REPO / "launch" / "cpu_2proc.yaml"),
                     "--main_process_port", "29547"]
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp), 400, args.image_size, features=args.input == "features")
        variants = {"one_process_2_threads": (one_process, 1, 2), "one_process_1_thread": (one_process, 1, 1),
                    "ddp_2_processes_1_thread": (two_processes, 2, 1)}
        rates: dict[str, list[float]] = {name: [] for name in variants}
        for repeat in range(repeats):  # interleaved, so machine load drifts hit every variant alike
            for name, (launcher, processes, threads) in variants.items():
                rates[name].append(throughput(launcher, processes, threads, data, Path(tmp) / f"{name}{repeat}",
                                              steps, args.batch_size, args.image_size))
    result = {f"{name}_samples_per_s": max(values) for name, values in rates.items()}
    baseline = max(result["one_process_2_threads_samples_per_s"], result["one_process_1_thread_samples_per_s"])
    result.update({"speedup": result["ddp_2_processes_1_thread_samples_per_s"] / baseline, "target_speedup": 1.3,
                   "batch_per_process": args.batch_size, "image_size": args.image_size, "input": args.input, "steps": steps,
                   "repeats": repeats, "load_average_1min": os.getloadavg()[0]})
    for name in variants:
        print(f"{name:26s}: {result[name + '_samples_per_s']:.1f} images/s")
    print(f"speedup {result['speedup']:.2f}x (target >= 1.3x)")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
