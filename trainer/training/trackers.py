"""The experiment trackers a run logs its scalars to (``logging.trackers``), passed to Accelerate's ``log_with``.

``tensorboard`` is always one of them (OUTPUT_DIR/tensorboard holds the text summaries and attention images too);
``wandb`` and ``mlflow`` get the same scalars when their packages are installed. W&B writes under OUTPUT_DIR
(``WANDB_MODE=offline`` for no network; project ``showattend`` unless ``WANDB_PROJECT`` says otherwise); MLflow
logs to ``MLFLOW_TRACKING_URI`` (a server or database), by default a file store in OUTPUT_DIR/mlruns, experiment ``showattend`` (or
``MLFLOW_EXPERIMENT_NAME``). Each run, a resumed one too, is one new tracker run named after OUTPUT_DIR.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

SUPPORTED = ("tensorboard", "wandb", "mlflow")
PROJECT = "showattend"


def check_trackers(names: list[str]) -> None:
    """ValueError naming ``logging.trackers`` when a name is unknown, repeated, not installed, or tensorboard is
    missing."""
    unknown = [name for name in names if name not in SUPPORTED]
    if unknown:
        raise ValueError(f"config key 'logging.trackers': {unknown[0]!r} is not one of {list(SUPPORTED)}")
    if len(set(names)) != len(names) or "tensorboard" not in names:
        raise ValueError(f"config key 'logging.trackers': {names} must name tensorboard and each tracker once")
    for name in names:
        if name != "tensorboard" and importlib.util.find_spec(name) is None:
            raise ValueError(f"config key 'logging.trackers': {name} is not installed (pip install {name})")


def build_trackers(names: list[str], output_dir: str | Path) -> list:
    """Accelerate ``log_with`` entries: "tensorboard" by name (its project name "tensorboard" makes the folder
    OUTPUT_DIR/tensorboard), W&B and MLflow as tracker objects with their own project names."""
    from accelerate.tracking import MLflowTracker, WandBTracker

    check_trackers(names)
    output_dir = Path(output_dir).absolute()
    trackers: list = []
    for name in names:
        if name == "tensorboard":
            trackers.append("tensorboard")
        elif name == "wandb":
            trackers.append(WandBTracker(os.environ.get("WANDB_PROJECT") or PROJECT, dir=str(output_dir),
                                         name=output_dir.name))
        else:
            if not os.environ.get("MLFLOW_TRACKING_URI"):  # mlflow reads these when the run starts
                os.environ["MLFLOW_TRACKING_URI"] = (output_dir / "mlruns").as_uri()
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks to opt in to file stores
            trackers.append(MLflowTracker(experiment_name=PROJECT, run_name=output_dir.name))
    return trackers
