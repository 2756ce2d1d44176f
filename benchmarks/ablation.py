"""Ablation study of the demo's training defaults on several synthetic presets, one change per row.

    python -m benchmarks.ablation [--presets shapes cluttered] [--rows baseline lambda_0.01 ...] [--steps 400]
                                  [--work runs/ablation] [--markdown runs/ablation/table.md] [--threads 1]

For each preset: build the data once (data_pipelines.synthetic -> prepare -> features, frozen random ResNet-50), write
the blind and human reference rows (trainer.baselines on the test split), then for each row train single-process on the
feature cache for a fixed number of optimizer steps (configs/demo.yaml + the row's overrides), evaluate the checkpoint
with the best val CIDEr-D on the test split (trainer.evaluate_checkpoint) and record test metrics, the val CIDEr-D curve and the
training seconds per step (from train/samples_per_s), so a wall-clock budget can be derived on a quieter machine.
Results go to WORK/results.jsonl (one line per preset x row; rows already there are not re-run) and a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from data_pipelines.safe_write import open_output, write_file
from trainer.config.schema import load_config

REPO = Path(__file__).resolve().parents[1]
NUM_IMAGES = 3000
IMAGE_SIZE = 128

# name -> (what changes, overrides on top of configs/demo.yaml). "baseline" is the config as it is.
ROWS = {
    "baseline": ("configs/demo.yaml as it is when the row runs", []),
    "lambda_0.1": ("doubly stochastic weight 0.1", ["loss.attention_lambda=0.1"]),
    "lambda_0.01": ("doubly stochastic weight 0.01", ["loss.attention_lambda=0.01"]),
    "lambda_0": ("no doubly stochastic term", ["loss.attention_lambda=0.0"]),
    "grid_4": ("4x4 grid at 128 px (the real map, no stretching)", ["model.grid_size=4"]),
    "image_224": ("224 px images and features (true 7x7 map)", ["data.image_size=224"]),
    "captions_1_batch_32": ("1 random caption per image, 32 images", ["data.captions_per_image=1"]),
    "captions_1_batch_160": ("1 random caption per image, 160 images", ["data.captions_per_image=1",
                                                                         "train.global_batch_size=160"]),
    "captions_1_steps_1100": ("1 random caption per image, 1,100 steps (about the training time of 400 steps with 5: "
                              "benchmarks.ablation_step_cost measured 0.35x per step)",
                              ["data.captions_per_image=1", "train.max_steps=1100", "eval.every_steps=220"]),
    "lr_1e-3": ("lr 1e-3", ["optim.lr=1e-3"]),
    "lr_4e-3": ("lr 4e-3", ["optim.lr=4e-3"]),
    "constant_lr": ("constant lr after warmup", ["schedule.name=constant"]),
    "batch_16": ("16 images per step", ["train.global_batch_size=16", "train.micro_batch_size=16"]),
    "hidden_512": ("hidden 512 (paper)", ["model.hidden_dim=512"]),
    "dropout_0": ("dropout 0", ["model.dropout=0.0"]),
    "dropout_0.5": ("dropout 0.5 (paper)", ["model.dropout=0.5"]),
    "teacher_forcing_only": ("teacher forcing only (no scheduled sampling)", ["teacher_forcing.schedule=constant"]),
    "feature_norm_layer": ("LayerNorm on each region's 2048-d backbone vector instead of BatchNorm of the channels",
                           ["model.feature_norm=layer"]),
    "beam_1": ("greedy decoding at validation and test", ["eval.beam_size=1"]),
}


def run(command: list[str], log: Path, timeout: int, env: dict | None = None) -> str:
    """Run under ``timeout -k 10``; stdout+stderr go to ``log``; returns stdout's last line or raises with the log."""
    with open_output(log, "a") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        result = subprocess.run(["timeout", "-k", "10", str(timeout), *command], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=handle, text=True, env={**os.environ, **(env or {})})
        handle.write(result.stdout)
    if result.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed with exit code {result.returncode}; see {log}")
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def image_size_of(overrides: list[str]) -> int:
    sizes = [int(item.split("=", 1)[1]) for item in overrides if item.startswith("data.image_size=")]
    return sizes[-1] if sizes else IMAGE_SIZE


def build_data(work: Path, preset: str, image_size: int, log: Path) -> tuple[Path, Path]:
    """Synthetic images -> prepared shards at ``image_size`` -> feature cache; reused when already there."""
    python = sys.executable
    synthetic, prepared, features = work / "synthetic", work / f"prepared_{image_size}", work / f"features_{image_size}"
    if not (synthetic / "dataset_synthetic.json").is_file():
        run([python, "-m", "data_pipelines.synthetic", "--preset", preset, "--out", str(synthetic), "--num-images",
             str(NUM_IMAGES), "--seed", "0"], log, 1800)
    if not (prepared / "manifest.json").is_file():
        run([python, "-m", "data_pipelines.prepare", "karpathy", "--json", str(synthetic / "dataset_synthetic.json"),
             "--images", str(synthetic), "--out", str(prepared), "--image-size", str(image_size), "--shard-size",
             "100", "--workers", "2"], log, 1800)
    if not (features / "manifest.json").is_file():
        run([python, "-m", "data_pipelines.features", "--data", str(prepared), "--out", str(features), "--weights",
             "none", "--image-size", str(image_size)], log, 3600)
    return prepared, features


def read_train_log(path: Path, batch_size: int) -> dict:
    """Val CIDEr-D curve [(step, value)] and median training seconds per optimizer step from train_log.jsonl."""
    curve, seconds = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if "val/CIDEr" in entry:
            curve.append((entry["step"], round(entry["val/CIDEr"], 4)))
        if entry.get("train/samples_per_s"):
            seconds.append(batch_size / entry["train/samples_per_s"])
    seconds.sort()
    return {"val_cider_curve": curve, "seconds_per_step": round(seconds[len(seconds) // 2], 4) if seconds else None}


def row_config(name: str):
    """configs/demo.yaml with the row's overrides, checked as trainer/train.py checks it."""
    return load_config(REPO / "configs" / "demo.yaml", ROWS[name][1])


def run_row(work: Path, preset: str, name: str, steps: int, timeout: int, log: Path) -> dict:
    """Train one row on one preset and evaluate its best checkpoint on the test split."""
    description, overrides = ROWS[name]
    image_size = image_size_of(overrides)
    prepared, features = build_data(work, preset, image_size, log)
    output = work / "rows" / name
    if output.exists():  # a half-finished earlier attempt: start clean, the row's result must come from one run
        subprocess.run(["rm", "-rf", str(output)], check=True)
    started = time.perf_counter()
    run([sys.executable, "trainer/train.py", "--config", "configs/demo.yaml", f"output_dir={output}",
         f"data.root={prepared}", f"data.features={features}", f"data.image_size={image_size}",
         f"train.max_steps={steps}", f"eval.every_steps={max(steps // 5, 1)}", f"checkpoint.every_steps={steps}",
         "data.num_workers=1", *overrides], log, timeout)
    train_seconds = time.perf_counter() - started
    beam = [o.split("=")[1] for o in overrides if o.startswith("eval.beam_size=")] or ["3"]
    metrics = json.loads(run([sys.executable, "-m", "trainer.evaluate_checkpoint", "--checkpoint", str(output / "best"),
                              "--data", str(prepared), "--features", str(features), "--split", "test",
                              "--beam-size", beam[0], "--num-workers", "1",
                              "--out", str(output / "results_test.json")], log, 1800))
    state = json.loads((output / "best" / "trainer_state.json").read_text())
    return {"preset": preset, "row": name, "change": description, "overrides": overrides, "steps": steps,
            "test": {key: round(value, 4) for key, value in metrics.items()}, "best_step": state.get("step"),
            "run_seconds": round(train_seconds, 1), "load_average": os.getloadavg()[0],
            **read_train_log(output / "train_log.jsonl", row_config(name).train.global_batch_size)}


def baselines(work: Path, preset: str, log: Path) -> dict:
    """Blind and human rows of the preset's test split (cached in WORK/PRESET/baselines.json)."""
    cache = work / "baselines.json"
    if not cache.is_file():
        prepared, _ = build_data(work, preset, IMAGE_SIZE, log)
        write_file(cache, run([sys.executable, "-m", "trainer.baselines", "--data", str(prepared), "--split", "test"],
                              log, 600) + "\n")
    return json.loads(cache.read_text(encoding="utf-8"))


def base_lambda(result: dict, work: Path) -> float:
    """The doubly stochastic weight of the defaults a row changed (the study moved the default from 1 to 0.01)."""
    if any(item.startswith("loss.attention_lambda=") for item in result["overrides"]):
        return 1.0  # the lambda rows were measured against the old defaults
    config = yaml.safe_load((work / result["preset"] / "rows" / result["row"] / "config.yaml").read_text())
    return float(config["loss"]["attention_lambda"])


def markdown(results: list[dict], refs: dict, rows: list[str], presets: list[str], work: Path) -> str:
    """Per defaults (old lambda 1, new lambda 0.01) a table: a row per change, per preset test CIDEr-D / BLEU-4 and
    s/step; blind and human rows first. The new defaults' own row is the old defaults' lambda_0.01 row."""
    found = {}
    for result in results:
        base = base_lambda(result, work)
        found[(base, result["preset"], result["row"])] = result
        if result["row"] == "lambda_0.01":
            found[(0.01, result["preset"], "baseline")] = result
    tables = []
    for base in sorted({key[0] for key in found}, reverse=True):
        header = "| row | change | " + " | ".join(f"{p} CIDEr-D | {p} BLEU-4 | {p} s/step" for p in presets) + " |"
        lines = [f"Changes from the defaults with attention_lambda {base:g}:", "", header,
                 "|" + "---|" * (2 + 3 * len(presets))]
        for label, key in (("blind", "blind"), ("human", "human")):
            cells = [f"{refs[p][key]['CIDEr']:.3f} | {refs[p][key]['Bleu_4']:.3f} | -" if p in refs else "- | - | -"
                     for p in presets]
            lines.append(f"| {label} | reference (trainer.baselines) | " + " | ".join(cells) + " |")
        for name in rows:
            if not any((base, preset, name) in found for preset in presets):
                continue
            cells = []
            for preset in presets:
                r = found.get((base, preset, name))
                cells.append(f"{r['test']['CIDEr']:.3f} | {r['test']['Bleu_4']:.3f} | {r['seconds_per_step']:.2f}"
                             if r else "- | - | -")
            change = "the defaults as they are" if name == "baseline" else ROWS[name][0]
            lines.append(f"| {name} | {change} | " + " | ".join(cells) + " |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["shapes", "cluttered"])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--steps", type=int, default=400, help="optimizer steps per row (same for every row)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per training run")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "ablation")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS of each run (default 1: on shared cores more threads thrash)")
    parser.add_argument("--table-only", action="store_true", help="print the table of the results so far, run nothing")
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    results_path, log = args.work / "results.jsonl", args.work / "ablation.log"
    results = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
    refs = {preset: baselines(args.work / preset, preset, log) for preset in args.presets}
    for name in [] if args.table_only else args.rows:  # row by row, so an interrupted study still compares every preset on the rows it did
        for preset in args.presets:
            if any(r["preset"] == preset and r["row"] == name and r["steps"] == args.steps for r in results):
                continue
            print(f"{preset} / {name}: training {args.steps} steps", flush=True)
            try:
                result = run_row(args.work / preset, preset, name, args.steps, args.timeout, log)
            except RuntimeError as error:
                print(f"{preset} / {name}: {error}", flush=True)
                continue
            results.append(result)
            with open_output(results_path, "a") as handle:
                handle.write(json.dumps(result) + "\n")
            print(f"{preset} / {name}: test {result['test']} ({result['seconds_per_step']} s/step)", flush=True)
    table = markdown([r for r in results if r["steps"] == args.steps], refs, args.rows, args.presets, args.work)
    print(table)
    if args.markdown:
        write_file(args.markdown, table)


if __name__ == "__main__":
    main()
