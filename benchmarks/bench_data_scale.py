"""Data pipeline cost per sample at 10k and 100k samples: it must stay flat (nothing held per sample).

    python -m benchmarks.bench_data_scale [--quick] [--sizes 10000 100000] [--json PATH]

For each size N, img2dataset-style shards of N tiny synthetic samples (16 px JPEG + caption, 1,000 per shard; made
beforehand, not timed) go through, in one fresh process: ``prepare webdataset`` (shards, vocabulary, stats),
the CIDEr-D document frequencies of the train split, and one streaming pass over the train split (eval loader, 0
workers, 32 px). Reported: wall and CPU seconds of each phase, milliseconds per sample in all, and the process's peak
RSS (ru_maxrss). CPU time is the steadier figure on a shared machine (wall time counts waits for other jobs).
The baseline is the smallest size: time per sample within 1.15x and peak RSS within 1.3x at the largest.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, benchmark_parser, write_result

SHARD_SIZE = 1000
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 40),
           "white": (245, 245, 245), "black": (10, 10, 10), "purple": (150, 40, 160), "orange": (240, 140, 20)}
SHAPES = ("square", "circle", "triangle", "star", "cross")
PLACES = ("on the left", "on the right", "at the top", "at the bottom", "in the middle")


def write_input_shards(folder: Path, num_samples: int, seed: int = 0) -> str:
    """img2dataset-style shards (KEY.jpg, KEY.txt, KEY.json) in ``folder``; returns their brace pattern."""
    from PIL import Image

    jpegs = {}
    for name, colour in COLOURS.items():
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), colour).save(buffer, "JPEG", quality=90)
        jpegs[name] = buffer.getvalue()
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    num_shards = -(-num_samples // SHARD_SIZE)
    for shard in range(num_shards):
        with tarfile.open(folder / f"{shard:05d}.tar", "w") as tar:
            for index in range(shard * SHARD_SIZE, min(num_samples, (shard + 1) * SHARD_SIZE)):
                colour = rng.choice(list(COLOURS))
                caption = f"a {colour} {rng.choice(SHAPES)} {rng.choice(PLACES)}"
                for extension, payload in (("jpg", jpegs[colour]), ("txt", caption.encode()),
                                           ("json", json.dumps({"status": "success", "key": f"{index:09d}"}).encode())):
                    info = tarfile.TarInfo(f"{index:09d}.{extension}")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    return f"{folder}/{{00000..{num_shards - 1:05d}}}.tar"


def measure(pattern: str, work: Path) -> dict:
    """Phase timings and peak RSS of prepare + document frequencies + one streaming pass (this process)."""
    from data_pipelines import prepare
    from data_pipelines.stream import build_eval_loader
    from trainer.scst.df_cache import load_document_frequencies

    timings = {}

    def timed(name: str, function):
        wall, cpu = time.perf_counter(), time.process_time()
        value = function()
        timings[f"{name}_s"], timings[f"{name}_cpu_s"] = time.perf_counter() - wall, time.process_time() - cpu
        return value

    manifest = timed("prepare", lambda: prepare.run([
        "webdataset", "--shards", pattern, "--out", work / "prepared", "--image-size", 32, "--shard-size", SHARD_SIZE,
        "--min-word-freq", 1, "--workers", 1]))
    table = timed("document_frequencies", lambda: load_document_frequencies(
        work / "prepared", cache_path=work / "cider_df.safetensors"))
    streamed = timed("stream_pass", lambda: sum(len(batch["image_id"]) for batch in build_eval_loader(
        work / "prepared", "train", batch_size=256, num_workers=0, image_size=32)))
    assert streamed == manifest["splits"]["train"]["images"] == table.num_images
    written = sum(entry["images"] for entry in manifest["splits"].values())
    return {**timings, "samples": written, "train_samples": streamed,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_size(num_samples: int, root: Path) -> dict:
    pattern = write_input_shards(root / f"input-{num_samples}", num_samples)
    output = subprocess.run([sys.executable, "-m", "benchmarks.bench_data_scale", "--child", pattern,
                             str(root / f"work-{num_samples}")], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    if output.returncode != 0:
        raise RuntimeError(f"{num_samples} samples: {output.stderr[-3000:]}")
    result = json.loads(output.stdout.strip().splitlines()[-1])
    for kind in ("s", "cpu_s"):
        total = sum(result[f"{phase}_{kind}"] for phase in ("prepare", "document_frequencies", "stream_pass"))
        result[f"ms_per_sample{'' if kind == 's' else '_cpu'}"] = 1000 * total / num_samples
    return result


def main() -> None:
    parser = benchmark_parser(__doc__, "2,000 and 20,000 samples")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="sample counts (default 10000 100000)")
    parser.add_argument("--child", nargs=2, metavar=("PATTERN", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], Path(args.child[1]))))
        return
    sizes = args.sizes or ([2000, 20000] if args.quick else [10000, 100000])
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_data_scale-") as root:
        results = {str(size): run_size(size, Path(root)) for size in sizes}
    small, large = results[str(min(sizes))], results[str(max(sizes))]
    summary = {"sizes": results, "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
               "time_per_sample_ratio": large["ms_per_sample"] / small["ms_per_sample"],
               "cpu_time_per_sample_ratio": large["ms_per_sample_cpu"] / small["ms_per_sample_cpu"],
               "peak_rss_ratio": large["peak_rss_mib"] / small["peak_rss_mib"]}
    print(json.dumps(summary, indent=1))
    write_result(summary, args.json)


if __name__ == "__main__":
    main()
