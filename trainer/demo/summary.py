"""The demo's summary: each stage's test metrics beside the reference points of trainer.baselines (the blind baseline,
one human caption against the others, the best reference), how each training stage ended, and each stage's gap to the
best reference."""
from __future__ import annotations

import json
from pathlib import Path

from trainer.evaluation.metrics.registry import METRIC_NAMES


def _stage_rows(model: dict, xe_metrics: dict | None) -> dict[str, dict]:
    if xe_metrics is None:
        return {"model (test)": model}
    return {"XE best (test)": xe_metrics, "XE+SCST best (test)": model}


def _how_the_run_ended(name: str, run: Path | None) -> str | None:
    if run is None or not (run / "run_summary.json").is_file():
        return None
    ended = json.loads((run / "run_summary.json").read_text())
    return (f"{name}: ended at step {ended['steps']} ({ended['stop_reason']}), best val CIDEr-D "
            f"{ended['best_cider'] or 0:.3f} at step {ended['best_step']}, {ended['wall_seconds'] / 60:.1f} min")


def summary_lines(model: dict, baselines: dict, xe_metrics: dict | None, xe_run: Path, scst_run: Path | None,
                  results: list[str]) -> list[str]:
    """``model``: the final checkpoint's test metrics; ``xe_metrics``: the cross-entropy stage's when SCST followed it;
    ``results``: the stages' results files in stage order, as passed to trainer.baselines (its ``results`` keys)."""
    stage_rows = _stage_rows(model, xe_metrics)
    rows = {**stage_rows, "blind baseline": baselines["blind"], "human (1 ref vs rest)": baselines["human"],
            "best reference": baselines["best_reference"]}
    lines = [f"{'':24}" + "".join(f"{name:>9}" for name in METRIC_NAMES)]
    lines += [f"{label:24}" + "".join(f"{values[name]:9.3f}" for name in METRIC_NAMES) for label, values in rows.items()]
    lines.append(f"blind baseline caption: {baselines['blind_caption']!r}")
    lines += filter(None, (_how_the_run_ended("XE", xe_run), _how_the_run_ended("SCST", scst_run)))
    if xe_metrics is not None:
        lines.append(f"SCST stage: test CIDEr-D {xe_metrics['CIDEr']:.3f} -> {model['CIDEr']:.3f} "
                     f"({100 * (model['CIDEr'] / xe_metrics['CIDEr'] - 1):+.1f}%)")
    lines.append("gap to the best reference (CIDEr-D), on images captioned with one of their references | with another "
                 "caption:")
    for stage, path in zip(stage_rows, results):
        gap = baselines["results"][path]
        lines.append(f"  {stage:22} {gap['gap_on_references']:.3f} | {gap['gap_on_other_captions']:.3f} "
                     f"({100 * gap['share_of_captions_that_are_references']:.0f}% of captions are references)")
    return lines


def closing_lines(work: Path, xe_run: Path, checkpoint: Path, elapsed_s: int, metrics: str) -> list[str]:
    """Where everything is, the wall time, and the test metrics (one JSON object) as the very last line."""
    return [f"checkpoints:     {xe_run}/checkpoints (best by val CIDEr: {checkpoint})",
            f"test results:    {work}/results_test.json",
            f"attention maps:  {work}/attention",
            f"learning curve:  {work}/learning_curve.png",
            f"tensorboard:     tensorboard --logdir {xe_run}",
            f"report:          {work}/report/index.html   (open it in a browser: table, curves, gallery)",
            f"wall time:       {elapsed_s // 60} min {elapsed_s % 60} s",
            "test metrics:",
            metrics]
