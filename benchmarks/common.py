"""What every benchmark shares: its arguments, writing its JSON result, best-of timing, a prepared synthetic dataset."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from data_pipelines.safe_write import write_file

REPO = Path(__file__).resolve().parents[1]


def benchmark_parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes: ``--quick`` and ``--json PATH``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    return parser


def search_benchmark_parser(doc: str) -> argparse.ArgumentParser:
    """``benchmark_parser`` plus the sizes of a caption search: --images 32, --beam-size 5, --vocab-size 10k,
    --max-len 20, --repeats 3; the script shrinks them to 8 images, max_len 10, one repeat on ``--quick``."""
    parser = benchmark_parser(doc, "8 images, max_len 10, one timed repeat")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    return parser


def write_result(result: dict, path: Path | None) -> None:
    """Write ``result`` as JSON to ``path`` (run_all collects these files); nothing when path is None."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, json.dumps(result, indent=1) + "\n")


def best_time(function, repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls of ``function()`` (the least disturbed by other jobs)."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def prepared_synthetic_dataset(root: Path, num_images: int, image_size: int, shard_size: int, workers: int = 1,
                               features: bool = False) -> Path:
    """``root/prep``: synthetic scenes prepared into shards (and ``root/features``, a feature cache of a frozen random
    backbone, when ``features``), built with the project's own CLIs."""
    def run(*arguments) -> None:
        subprocess.run([sys.executable, "-m", *map(str, arguments)], check=True, cwd=REPO, capture_output=True)

    run("data_pipelines.synthetic", "--out", root / "syn", "--num-images", num_images, "--seed", 0,
        "--image-size", image_size)
    run("data_pipelines.prepare", "karpathy", "--json", root / "syn" / "dataset_synthetic.json", "--images",
        root / "syn", "--out", root / "prep", "--image-size", image_size, "--shard-size", shard_size,
        "--min-word-freq", 1, "--workers", workers)
    if features:
        run("data_pipelines.features", "--data", root / "prep", "--out", root / "features", "--weights", "none",
            "--image-size", image_size)
    return root / "prep"
