"""``logging.trackers``: W&B (offline mode) and MLflow (file store) get the same scalars as TensorBoard in a real
tiny training run; a bad tracker list is a one-line config error."""
import json
import math
import struct
from pathlib import Path

import pytest

from tests.test_trainer_train import prepare_synthetic, train
from trainer.training.trackers import check_trackers


def tensorboard_scalars(output_dir: Path) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(output_dir / "tensorboard")).Reload()
    return {tag: {event.step: event.value for event in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def mlflow_scalars(output_dir: Path) -> dict[str, dict[int, float]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(output_dir / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("showattend")
    (run,) = client.search_runs([experiment.experiment_id])
    return {key: {metric.step: metric.value for metric in client.get_metric_history(run.info.run_id, key)}
            for key in run.data.metrics}


def wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B run file: a 7-byte header (":W&B", 0xBEE1, version 0), then LevelDB-log records in
    32 KiB blocks, each a 7-byte header (crc, length, type: 1 full, 2 first, 3 middle, 4 last) and its bytes."""
    data = path.read_bytes()
    assert struct.unpack("<4sHB", data[:7]) == (b":W&B", 0xBEE1, 0)
    records, pending, position = [], b"", 7
    while position + 7 <= len(data):
        if 32768 - position % 32768 < 7:  # a block's tail too short for a header is padding
            position += 32768 - position % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0 and length == 0:
            break
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            records.append(pending)
            pending = b""
    return records


def wandb_scalars(output_dir: Path) -> dict[str, dict[int, float]]:
    """History rows of the offline run file (OUTPUT_DIR/wandb/offline-run-*/run-*.wandb)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = output_dir.glob("wandb/offline-run-*/run-*.wandb")
    scalars: dict = {}
    for data in wandb_records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") != "history":
            continue
        row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
        for key, value in row.items():
            if not key.startswith("_") and isinstance(value, (int, float)):
                scalars.setdefault(key, {})[row["_step"]] = float(value)
    return scalars


def assert_same(ours: dict, reference: dict) -> None:
    assert sorted(ours) == sorted(reference)
    for tag, values in reference.items():
        assert sorted(ours[tag]) == sorted(values), tag
        for step, value in values.items():  # TensorBoard stores float32
            assert math.isclose(ours[tag][step], value, rel_tol=1e-6, abs_tol=1e-7), (tag, step)


@pytest.mark.slow
def test_wandb_and_mlflow_get_the_tensorboard_scalars(tmp_path, monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_PROJECT", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for the client here; the run sets it for its default
    dataset = prepare_synthetic(tmp_path / "data")
    out = tmp_path / "run"
    train(dataset, out, "train.max_steps=3", "data.num_workers=0", "logging.trackers=[tensorboard,wandb,mlflow]",
          env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    reference = tensorboard_scalars(out)
    assert {"train/loss", "train/lr", "val/CIDEr"} <= set(reference) and sorted(reference["train/loss"]) == [1, 2, 3]
    assert_same(mlflow_scalars(out), reference)
    assert_same(wandb_scalars(out), reference)


def test_tracker_list_is_checked(monkeypatch):
    check_trackers(["tensorboard"])
    for names, message in ((["tensorboard", "neptune"], "'neptune' is not one of"),
                           (["wandb"], "must name tensorboard"), (["tensorboard", "tensorboard"], "each tracker once")):
        with pytest.raises(ValueError, match=f"logging.trackers.*{message}"):
            check_trackers(names)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ValueError, match="wandb is not installed"):
        check_trackers(["tensorboard", "wandb"])
