"""The experiment trackers a run logs its scalars to (``logging.trackers``), passed to Accelerate's ``log_with``.

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
from pathlib import Path
from urllib.parse import urlsplit

from data_pipelines.redact import redact

SUPPORTED = ("tensorboard", "wandb", "mlflow")
PROJECT = "showattend"
MLFLOW_CONNECT_TIMEOUT_S = 5.0
HINTS = {"wandb": "set WANDB_MODE=offline (no network) or give an API key (WANDB_API_KEY, or `wandb login`)",
         "mlflow": "check MLFLOW_TRACKING_URI={uri} (a reachable server, sqlite:///FILE or file:FOLDER)"}


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


def start_trackers(accelerator, names: list[str], config: dict) -> None:
    """``accelerator.init_trackers`` (main process) with the run's flattened ``config``; a tracker that cannot start
    is a ValueError naming it and the setting to fix (no traceback)."""
    if "mlflow" in names:
        check_mlflow_uri()
    try:
        accelerator.init_trackers("tensorboard", config=config)
    except Exception as error:  # noqa: BLE001 - tracker libraries raise their own types; named below
        name = type(error).__module__.split(".")[0]
        hint = HINTS.get(name, "").replace("{uri}", redact(os.environ.get("MLFLOW_TRACKING_URI", "")))
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise ValueError(f"config key 'logging.trackers': {name} could not start ({type(error).__name__}: "
                         f"{redact(first_line)[:300]}){'; ' + hint if hint else ''}") from None
