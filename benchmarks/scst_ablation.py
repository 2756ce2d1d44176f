"""Ablation of the self-critical stage (configs/demo_scst.yaml) on demo work dirs, one change per row.

    bash launch/demo.sh --preset toys --work runs/demo-toys          # first: data, features, the XE stage, SCST
    python -m benchmarks.scst_ablation --runs runs/demo-toys runs/demo-scenes [--rows default lr_5e-5 ...]
                                       [--markdown runs/scst_ablation.md] [--table-only]

Each row trains SCST from the demo's cross-entropy best (``WORK/train/best``) with 2 CPU processes as the demo does,
without a time budget (the end is the step cap or ``eval.patience``, so a row is deterministic on one machine), then
evaluates its best checkpoint on the test split. The ``default`` row is the demo's own ``WORK/train_scst`` when that
run used today's configs/demo_scst.yaml settings and ended on a plateau or at its step cap (a budget never decided
it, so it is the same run). Results go to
``WORK/scst_rows/results.jsonl`` (rows already there are not re-run) and one markdown table over every work dir.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks.ablation import REPO, run
from data_pipelines.safe_write import open_output, write_file
from trainer.config.schema import load_config

# what a reused run must share with configs/demo_scst.yaml (the demo sets paths and the time budget)
RECIPE_SECTIONS = ("optim", "schedule", "scst", "loss", "eval")
RECIPE_TRAIN_KEYS = ("objective", "global_batch_size", "max_steps", "max_grad_norm")
# name -> (what changes, overrides on top of configs/demo_scst.yaml). "default" is the config as it is; the other
# rows turn the paired check of best/ off (eval.best_min_z=0), as the recipe was before it, and change one thing.
UNGUARDED = ["eval.best_min_z=0"]
ROWS = {
    "default": ("configs/demo_scst.yaml as it is (lr 1e-4, 5 samples, mean of the others as baseline, best/ moves "
                "off the start only at paired z >= 2)", []),
    "no_check": ("best/ keeps any val gain (eval.best_min_z 0)", UNGUARDED),
    "lr_5e-5": ("no check; lr 5e-5", [*UNGUARDED, "optim.lr=5e-5"]),
    "lr_2e-4": ("no check; lr 2e-4", [*UNGUARDED, "optim.lr=2e-4"]),
    "warmup_25": ("no check; 25 steps of linear lr warm-up", [*UNGUARDED, "schedule.warmup_steps=25"]),
    "samples_10": ("no check; 10 samples per image", [*UNGUARDED, "scst.samples=10"]),
    "greedy_baseline": ("no check; the greedy caption's reward as baseline", [*UNGUARDED, "scst.baseline=greedy"]),
    "entropy_0.01": ("no check; entropy bonus 0.01", [*UNGUARDED, "scst.entropy_weight=0.01"]),
}


def last_json_line(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8").strip().splitlines()[-1])


def evaluate(work: Path, checkpoint: Path, out: Path, log: Path) -> dict:
    """Test-split metrics of ``checkpoint`` (as the demo evaluates)."""
    return json.loads(run([sys.executable, "-m", "trainer.evaluate_checkpoint", "--checkpoint", str(checkpoint),
                           "--data", str(work / "prepared"), "--features", str(work / "features"), "--split", "test",
                           "--out", str(out)], log, 1800))


def same_recipe(run_config: Path) -> bool:
    """The run at ``run_config`` (its effective config.yaml) trained with configs/demo_scst.yaml's SCST settings."""
    if not run_config.is_file():
        return False
    ran, current = load_config(run_config, []).to_dict(), load_config(REPO / "configs" / "demo_scst.yaml", []).to_dict()
    return (all(ran[section] == current[section] for section in RECIPE_SECTIONS)
            and all(ran["train"][key] == current["train"][key] for key in RECIPE_TRAIN_KEYS))


def demo_default(work: Path) -> dict | None:
    """The demo's own SCST run as the default row, when it ran today's recipe and no time budget decided its end."""
    summary_path = work / "train_scst" / "run_summary.json"
    if not summary_path.is_file() or not (work / "evaluate.log").is_file():
        return None
    if not same_recipe(work / "train_scst" / "config.yaml"):
        return None
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    if summary["stop_reason"] not in ("plateau", "max_steps"):
        return None
    return {"summary": summary, "test": last_json_line(work / "evaluate.log")}


def train_row(work: Path, name: str, log: Path) -> dict:
    """SCST from the demo's XE best with the row's overrides; its summary and test metrics."""
    output = work / "scst_rows" / name
    if output.exists():  # a half-finished earlier attempt: the row's result must come from one run
        shutil.rmtree(output)
    run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", "launch/cpu_2proc.yaml",
         "trainer/train.py", "--config", "configs/demo_scst.yaml", f"train.init_from={work / 'train' / 'best'}",
         f"output_dir={output}", f"data.root={work / 'prepared'}", f"data.features={work / 'features'}",
         f"data.image_size={json.loads((work / 'demo_inputs.json').read_text())['image_size']}",
         "train.max_minutes=0", *ROWS[name][1]], log, 3600, env={"OMP_NUM_THREADS": "1"})
    summary = json.loads((output / "run_summary.json").read_text(encoding="utf-8"))
    return {"summary": summary, "test": evaluate(work, output / "best", output / "results_test.json", log)}


def measure(work: Path, name: str, log: Path) -> dict:
    started = time.perf_counter()
    row = (demo_default(work) if name == "default" else None) or train_row(work, name, log)
    xe = last_json_line(work / "evaluate_xe.log")
    summary = row["summary"]
    return {"work": work.name, "row": name, "overrides": ROWS[name][1], "xe_test_cider": round(xe["CIDEr"], 4),
            "test": {key: round(value, 4) for key, value in row["test"].items()},
            "gain": round(row["test"]["CIDEr"] / xe["CIDEr"] - 1, 4), "steps": summary["steps"],
            "best_step": summary["best_step"], "stop_reason": summary["stop_reason"],
            "wall_seconds": summary["wall_seconds"], "seconds_here": round(time.perf_counter() - started, 1),
            "load_average": os.getloadavg()[0]}


def markdown(results: list[dict], rows: list[str], works: list[str]) -> str:
    """A row per change: per work dir the XE+SCST test CIDEr-D, its gain over XE and the best / last step; then the
    mean gain."""
    found = {(r["work"], r["row"]): r for r in results}
    header = "| row | change | " + " | ".join(f"{w}: test CIDEr-D (gain), best / last step" for w in works) + \
        " | mean gain |"
    lines = [header, "|" + "---|" * (3 + len(works))]
    xe = [next((r["xe_test_cider"] for r in results if r["work"] == w), None) for w in works]
    lines.append("| XE | the cross-entropy best the rows start from | " +
                 " | ".join(f"{value:.3f}" if value else "-" for value in xe) + " | - |")
    for name in rows:
        cells, gains = [], []
        for work in works:
            r = found.get((work, name))
            if r:
                gains.append(r["gain"])
                cells.append(f"{r['test']['CIDEr']:.3f} ({100 * r['gain']:+.1f}%), {r['best_step']} / {r['steps']}")
            else:
                cells.append("-")
        mean = f"{100 * sum(gains) / len(gains):+.1f}%" if len(gains) == len(works) else "-"
        lines.append(f"| {name} | {ROWS[name][0]} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="demo work dirs (launch/demo.sh --work)")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    parser.add_argument("--table-only", action="store_true", help="the table of the rows measured so far; run nothing")
    args = parser.parse_args(argv)
    works = [path.resolve() for path in args.runs]
    for work in works:
        if not (work / "train" / "best").is_dir() or not (work / "evaluate_xe.log").is_file():
            parser.error(f"{work}: not a finished demo work dir (expected train/best and evaluate_xe.log)")
    results = []
    for name in args.rows:  # row by row, so an interrupted study still compares every work dir on the rows it did
        for work in works:
            results_path = work / "scst_rows" / "results.jsonl"
            done = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
            result = next((r for r in done if r["row"] == name and r["overrides"] == ROWS[name][1]), None)
            if result is None and args.table_only:
                continue
            if result is None:
                print(f"{work.name} / {name}: training", flush=True)
                results_path.parent.mkdir(parents=True, exist_ok=True)
                result = measure(work, name, work / "scst_rows" / "ablation.log")
                with open_output(results_path, "a") as handle:
                    handle.write(json.dumps(result) + "\n")
            print(f"{work.name} / {name}: test CIDEr-D {result['test']['CIDEr']:.3f} ({100 * result['gain']:+.1f}%), "
                  f"best step {result['best_step']} of {result['steps']} ({result['stop_reason']})", flush=True)
            results.append(result)
    table = markdown(results, args.rows, [work.name for work in works])
    print(table)
    if args.markdown:
        write_file(args.markdown, table)


if __name__ == "__main__":
    main()
