"""CLI of the GPU check (see the package docstring): sections in order, each within its time budget."""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import traceback
from pathlib import Path

import torch

from benchmarks.gpu_check import beam, features, gpu_tests, training, xe_scst
from benchmarks.gpu_check.device import describe_device, parse_peak_overrides, peak_tflops
from benchmarks.gpu_check.report import epoch_estimate, markdown
from data_pipelines.safe_write import write_file

# Seconds per section on a GPU, 465 in all: with start-up, the whole check stays within 8 minutes. --smoke (CPU, toy
# sizes, 170 in all): the time is start-up and imports, mostly of the XE + SCST stages' seven subprocesses.
SECTIONS = {"tests": 80, "train": 140, "beam": 20, "features": 45, "xe_scst": 180}
SMOKE_SECTIONS = {"tests": 25, "train": 40, "beam": 10, "features": 15, "xe_scst": 80}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, required=True, help="write the results here (after every section)")
    parser.add_argument("--md", type=Path, default=None, help="and a Markdown summary here")
    parser.add_argument("--smoke", action="store_true", help="toy sizes on the CPU: every code path in < 3 minutes")
    parser.add_argument("--peak-tflops", default=None, help="override the peak table, e.g. bf16=989,fp32=67")
    parser.add_argument("--budget-scale", type=float, default=1.0,
                        help="multiply every section's time budget (a slower GPU, a loaded machine)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {list(SECTIONS)}")
    parser.add_argument("--mixture", action="store_true",
                        help="xe_scst trains on a 1:1 mixture of two synthetic presets (data.sources), one feature "
                             "cache each, and reports each source's test CIDEr-D")
    args = parser.parse_args(argv)
    unknown = [name for name in args.only.split(",") if name not in SECTIONS]
    if unknown:
        parser.error(f"--only: unknown section {unknown[0]!r} (sections: {list(SECTIONS)})")
    if not args.budget_scale > 0:
        parser.error(f"--budget-scale must be > 0, got {args.budget_scale}")
    try:
        args.peak_overrides = parse_peak_overrides(args.peak_tflops)
    except ValueError as error:
        parser.error(str(error))
    return args


def run_section(name: str, budget_s: float, work: Path, device: torch.device, peaks: dict, smoke: bool,
                mixture: bool = False):
    deadline = time.monotonic() + budget_s
    if name == "tests":
        return gpu_tests.run(work, budget_s)
    if name == "train":
        return training.run(device, peaks, deadline, smoke)
    if name == "beam":
        return beam.run(device, deadline, smoke)
    if name == "features":
        return features.run(device, deadline, smoke)
    section_work = work / "xe_scst"
    section_work.mkdir()
    return xe_scst.run(section_work, deadline, smoke, mixture)


def _finite(value):
    """JSON has no NaN/inf: such values are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def write(result: dict, args: argparse.Namespace) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_file(args.json, json.dumps(_finite(result), indent=1) + "\n")
    if args.md is not None:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        write_file(args.md, markdown(result))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu" and not args.smoke:
        print("gpu_check: no CUDA device here; the figures below are CPU figures at full size (use --smoke for toys)")
    peaks, source = peak_tflops(device, args.peak_overrides)
    result = {"smoke": args.smoke, "device": describe_device(device, peaks, source), "tests": {}, "train": [],
              "beam": [], "features": [], "xe_scst": {}, "epoch_estimate": {}, "sections": {}}
    failed = []
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        for name in args.only.split(","):
            budget = (SMOKE_SECTIONS if args.smoke else SECTIONS)[name] * args.budget_scale
            section_started = time.monotonic()
            print(f"gpu_check: {name} (budget {budget:.0f} s)", flush=True)
            try:
                result[name] = run_section(name, budget, Path(tmp), device, peaks, args.smoke, args.mixture)
                status = "ok"
            except Exception as error:  # noqa: BLE001 - a failing section is recorded; the others still run
                status = f"error: {type(error).__name__}: {error}"
                result[name] = {"error": status, "traceback": traceback.format_exc()[-3000:]}
                failed.append(name)
            result["sections"][name] = {"budget_s": budget, "seconds": round(time.monotonic() - section_started, 1),
                                        "status": status}
            print(f"gpu_check: {name}: {status} ({result['sections'][name]['seconds']} s)", flush=True)
            if name == "train":
                result["epoch_estimate"] = epoch_estimate(result["train"] if isinstance(result["train"], list) else [])
            result["wall_s"] = round(time.monotonic() - started, 1)
            write(result, args)
    print(f"gpu_check: wrote {args.json}" + (f" and {args.md}" if args.md else "") + f" in {result['wall_s']} s"
          + (f"; failed sections: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
