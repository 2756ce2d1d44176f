"""The experiment trackers a run logs its scalars to (``logging.trackers``, names of ``TRACKERS``), passed to
Accelerate's ``log_with``.

``tensorboard`` is always one of them (OUTPUT_DIR/tensorboard holds the text summaries and attention images too);
``wandb`` and ``mlflow`` get the same scalars when their packages are installed. W&B writes under OUTPUT_DIR
(``WANDB_MODE=offline`` for no network; project ``showattend`` unless ``WANDB_PROJECT`` says otherwise); MLflow
logs to ``MLFLOW_TRACKING_URI`` (a server or database), by default a file store in OUTPUT_DIR/mlruns, experiment ``showattend`` (or
``MLFLOW_EXPERIMENT_NAME``). Each run, a resumed one too, is one new tracker run named after OUTPUT_DIR.

A tracker that cannot start is one line naming the setting to fix (``start_trackers``): W&B without
``WANDB_MODE=offline`` or an API key, an MLflow server that does not answer within ``MLFLOW_CONNECT_TIMEOUT_S``
(MLflow's own retries would wait minutes). A ``file:`` MLflow store is accepted like the default one.
"""
from __future__ import annotations

import importlib.util
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from data_pipelines.redact import redact
from data_pipelines.registry import Registry

PROJECT = "showattend"
MLFLOW_CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Tracker:
    """One tracker ``logging.trackers`` can name. ``build(output_dir)``: its Accelerate ``log_with`` entry (a name
    Accelerate knows, or a ``GeneralTracker``), made when the Accelerator is; ``package``: the module that must be
    installed (None: none); ``hint``: what to fix when it cannot start (``{uri}``: MLFLOW_TRACKING_URI); ``check``:
    called before it starts (a server that must answer)."""

    build: Callable[[Path], Any]
    package: str | None = None
    hint: str = ""
    check: Callable[[], None] | None = None


def check_trackers(names: list[str]) -> None:
    """ValueError naming ``logging.trackers`` when a name is unknown, repeated, not installed, or tensorboard is
    missing."""
    trackers = [TRACKERS.lookup(name, "config key 'logging.trackers'") for name in names]
    if len(set(names)) != len(names) or "tensorboard" not in names:
        raise ValueError(f"config key 'logging.trackers': {names} must name tensorboard and each tracker once")
    for name, tracker in zip(names, trackers):
        if tracker.package is not None and importlib.util.find_spec(tracker.package) is None:
            raise ValueError(f"config key 'logging.trackers': {name} is not installed (pip install {tracker.package})")


def build_trackers(names: list[str], output_dir: str | Path) -> list:
    """Accelerate ``log_with`` entries of ``names`` for a run writing to ``output_dir``."""
    check_trackers(names)
    output_dir = Path(output_dir).absolute()
    return [TRACKERS[name].build(output_dir) for name in names]


def wandb_tracker(output_dir: Path):
    """W&B under OUTPUT_DIR, project ``WANDB_PROJECT`` or showattend, the run named after OUTPUT_DIR."""
    from accelerate.tracking import WandBTracker

    return WandBTracker(os.environ.get("WANDB_PROJECT") or PROJECT, dir=str(output_dir), name=output_dir.name)


def mlflow_tracker(output_dir: Path):
    """MLflow at ``MLFLOW_TRACKING_URI``, by default a file store in OUTPUT_DIR/mlruns; experiment showattend."""
    from accelerate.tracking import MLflowTracker

    if not os.environ.get("MLFLOW_TRACKING_URI"):  # mlflow reads these when the run starts
        os.environ["MLFLOW_TRACKING_URI"] = (output_dir / "mlruns").as_uri()
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks to opt in to file stores
    return MLflowTracker(experiment_name=PROJECT, run_name=output_dir.name)


def check_mlflow_uri() -> None:
    """MLflow's settings for this process: a file store accepted (MLflow 3 asks to opt in), a server that must
    answer within ``MLFLOW_CONNECT_TIMEOUT_S``, and bounded HTTP retries afterwards."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    if parts.scheme not in ("http", "https"):
        return
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "", port), timeout=MLFLOW_CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise ValueError(f"config key 'logging.trackers': mlflow: MLFLOW_TRACKING_URI={redact(uri)} cannot be "
                         f"reached within {MLFLOW_CONNECT_TIMEOUT_S:g} s ({error}); start the server or point "
                         f"MLFLOW_TRACKING_URI elsewhere") from None


# "tensorboard" by name: its project name "tensorboard" makes the folder OUTPUT_DIR/tensorboard
TRACKERS = Registry("tracker", {
    "tensorboard": Tracker(lambda output_dir: "tensorboard"),
    "wandb": Tracker(wandb_tracker, "wandb", "set WANDB_MODE=offline (no network) or give an API key "
                     "(WANDB_API_KEY, or `wandb login`)"),
    "mlflow": Tracker(mlflow_tracker, "mlflow", "check MLFLOW_TRACKING_URI={uri} (a reachable server, "
                      "sqlite:///FILE or file:FOLDER)", check_mlflow_uri)})


def start_trackers(accelerator, names: list[str], config: dict) -> None:
    """``accelerator.init_trackers`` (main process) with the run's flattened ``config``; a tracker that cannot start
    is a ValueError naming it and the setting to fix (no traceback)."""
    for name in names:
        if TRACKERS[name].check is not None:
            TRACKERS[name].check()
    try:
        accelerator.init_trackers("tensorboard", config=config)
    except Exception as error:  # noqa: BLE001 - tracker libraries raise their own types; named below
        name = type(error).__module__.split(".")[0]
        hint = next((tracker.hint for tracker in TRACKERS.values() if tracker.package == name), "")
        hint = hint.replace("{uri}", redact(os.environ.get("MLFLOW_TRACKING_URI", "")))
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise ValueError(f"config key 'logging.trackers': {name} could not start ({type(error).__name__}: "
                         f"{redact(first_line)[:300]}){'; ' + hint if hint else ''}") from None
