"""Learning curves from the train log: loss, cross-entropy and validation CIDEr-D against steps and wall time."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402

from data_pipelines.safe_write import replaced_on_success  # noqa: E402

CURVES = (("train/loss", "training loss"), ("train/ce", "cross-entropy"), ("val/CIDEr", "validation CIDEr-D"))
COLOURS = ("#3b6ea8", "#c0504d", "#2e8b57")


def _series(records: list[dict], tag: str, x_key: str) -> tuple[list[float], list[float]]:
    points = [(record[x_key], record[tag]) for record in records if tag in record and x_key in record]
    return [x for x, _ in points], [y for _, y in points]


def with_elapsed_minutes(records: list[dict]) -> list[dict]:
    """Records with ``minutes`` since the first record's ``wall_time`` (when the log has wall times)."""
    times = [record["wall_time"] for record in records if "wall_time" in record]
    if not times:
        return records
    start = min(times)
    return [{**record, "minutes": (record["wall_time"] - start) / 60.0} if "wall_time" in record else record
            for record in records]


def plot_learning_curves(records: list[dict], out_path: Path) -> Path | None:
    """One PNG: a column per curve, against steps (top row) and wall time (bottom row, when logged). None when the
    log has none of the curves."""
    records = with_elapsed_minutes(records)
    if not any(tag in record for record in records for tag, _ in CURVES):
        return None
    x_axes = [("step", "optimizer step")] + ([("minutes", "wall time (minutes)")]
                                             if any("minutes" in record for record in records) else [])
    figure, axes = plt.subplots(len(x_axes), len(CURVES), figsize=(4.2 * len(CURVES), 3.0 * len(x_axes)),
                                squeeze=False, constrained_layout=True)
    for row, (x_key, x_label) in enumerate(x_axes):
        for column, ((tag, title), colour) in enumerate(zip(CURVES, COLOURS)):
            axis = axes[row][column]
            xs, ys = _series(records, tag, x_key)
            axis.plot(xs, ys, color=colour, linewidth=1.6, marker="o" if len(xs) < 30 else None, markersize=3)
            if not xs:
                axis.text(0.5, 0.5, f"no {tag} in the log", ha="center", va="center", transform=axis.transAxes,
                          color="grey")
            axis.set_title(title, fontsize=11)
            axis.set_xlabel(x_label, fontsize=9)
            axis.grid(True, alpha=0.3)
            axis.tick_params(labelsize=8)
            for side in ("top", "right"):
                axis.spines[side].set_visible(False)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_on_success(out_path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    return out_path
