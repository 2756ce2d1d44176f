"""Run every benchmark, collect their JSON results into one file and a Markdown table (benchmarks/README.md shows the figures).

    python -m benchmarks.run_all [--quick] [--out benchmarks/results]

Each benchmark is a script `benchmarks/bench_*.py` that measures its figures against a baseline in the same run and
writes a flat JSON object with `--json PATH`. Nothing here asserts on time: the machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from data_pipelines.safe_write import write_file

BENCHMARKS = {
    "bench_loader.py": "Streaming loader vs bare decode loop (the limit)",
    "bench_feature_cache.py": "Training on the feature cache vs on images (224 px)",
    "bench_finetune.py": "Stage 2 (layer4 trained) from the cached frozen prefix vs from images",
    "bench_decoding_controls.py": "Beam search with every decoding control on vs plain",
    "bench_onnx_search.py": "ONNX captioner's numpy beam search over a batch vs one image at a time",
    "bench_train_step.py": "Training step on precomputed features",
    "bench_ddp.py": "2-process CPU DDP vs 1 process",
    "bench_memory.py": "Peak RSS as the dataset grows 10x",
    "bench_metrics.py": "Our metrics vs pycocoevalcap 1.2",
    "bench_scst_reward.py": "SCST reward (token ids) vs pycocoevalcap Cider per batch",
    "bench_prepare.py": "prepare --workers 2 vs --workers 1",
    "bench_resume.py": "Resume at 90% of an epoch: tar-member skip vs decode-and-skip",
    "bench_data_scale.py": "Data pipeline time and peak RSS per sample, 10x more samples",
    "bench_mixture.py": "Training loader on a 1:1 mixture of two datasets vs on one holding the same images",
}


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _flatten(result: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def markdown_table(results: dict[str, dict]) -> str:
    """One row per benchmark: what it compares and its measured figures."""
    lines = ["| benchmark | what | measured |", "|---|---|---|"]
    for script, result in results.items():
        figures = "; ".join(f"{k}={_format_value(v)}" for k, v in _flatten(result).items())
        lines.append(f"| `{script}` | {BENCHMARKS[script]} | {figures} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (smaller inputs)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="output directory")
    parser.add_argument("--only", nargs="*", default=None, help="run only these scripts (e.g. bench_metrics.py)")
    args = parser.parse_args()

    here = Path(__file__).parent
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for script in args.only or list(BENCHMARKS):
        if script not in BENCHMARKS:
            parser.error(f"unknown benchmark {script!r}; choose from {sorted(BENCHMARKS)}")
        json_path = args.out / f"{Path(script).stem}.json"
        command = [sys.executable, "-m", f"benchmarks.{Path(script).stem}", "--json", str(json_path)]
        command += ["--quick"] if args.quick else []
        print(f"== {script}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=here.parent)
        elapsed = time.perf_counter() - started
        if completed.returncode != 0:
            results[script] = {"error": f"exit code {completed.returncode}", "wall_s": round(elapsed, 1)}
            continue
        results[script] = json.loads(json_path.read_text())
    write_file((args.out / "results.json"), json.dumps(results, indent=2) + "\n")
    table = markdown_table(results)
    write_file((args.out / "results.md"), table)
    print(table)


if __name__ == "__main__":
    main()
