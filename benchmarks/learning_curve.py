"""Learning-curve picture of a training run: val CIDEr-D against wall-clock minutes and against optimizer steps.

    python -m benchmarks.learning_curve --run TRAIN_DIR --out curve.png [--blind CIDER] [--title TEXT]

Reads the run's TensorBoard event files (``val/CIDEr`` and each event's wall time). Minutes count from the first event
of each event file, so a resumed run's pause is left out. ``--blind`` draws the blind baseline and 4x it.
Prints one JSON line: the points plotted.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from data_pipelines.safe_write import replaced_on_success  # noqa: E402

TAG = "val/CIDEr"


def read_curve(run: Path, tag: str = TAG) -> list[dict]:
    """``[{"step", "minutes", "value"}]`` of ``tag`` over every event file under ``run``, in step order."""
    files = sorted(run.rglob("events.out.tfevents.*"), key=lambda path: path.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no TensorBoard event files under {run} (expected a trainer output_dir)")
    points, offset = {}, 0.0
    for path in files:
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        start = events.FirstEventTimestamp()
        last = start
        for scalar_tag in events.Tags()["scalars"]:
            for event in events.Scalars(scalar_tag):
                last = max(last, event.wall_time)
                if scalar_tag == tag:
                    points[event.step] = {"step": event.step, "minutes": round((offset + event.wall_time - start) / 60, 3),
                                          "value": round(event.value, 4)}
        offset += last - start
    if not points:
        raise ValueError(f"{run}: the event files hold no {tag!r} scalars (did validation run?)")
    return [points[step] for step in sorted(points)]


def plot(points: list[dict], out: Path, blind: float | None = None, title: str = "") -> None:
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for axis, key, label in ((axes[0], "minutes", "wall-clock minutes (training + validation)"),
                             (axes[1], "step", "optimizer steps")):
        axis.plot([p[key] for p in points], [p["value"] for p in points], marker="o", label="val CIDEr-D")
        if blind is not None:
            axis.axhline(blind, color="grey", linestyle=":", label="blind baseline")
            axis.axhline(4 * blind, color="grey", linestyle="--", label="4x blind")
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("val CIDEr-D")
    axes[1].legend(loc="lower right")
    figure.suptitle(title or "learning curve")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with replaced_on_success(out) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="trainer output_dir (holds the TensorBoard events)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--blind", type=float, default=None, help="blind-baseline CIDEr-D to draw (and 4x it)")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    try:
        points = read_curve(args.run)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
    plot(points, args.out, args.blind, args.title)
    print(json.dumps(points))


if __name__ == "__main__":
    main()
