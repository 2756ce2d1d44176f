"""`python -m trainer.evaluate_checkpoint` on a tiny checkpoint (random weights) and a tiny prepared synthetic dataset."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from conftest import TINY_IMAGE_SIZE as IMAGE_SIZE
from conftest import TINY_TEST_IMAGES as TEST_IMAGES

from trainer import evaluate_checkpoint as evaluate_cli
from trainer.evaluation.metrics import METRIC_NAMES, OPTIONAL_METRIC_NAMES
from trainer.inference.pipeline import DEFAULT_IMAGE_SIZE, load_for_inference, resolve_image_size


def check_outputs(stdout: str, results_path: Path) -> dict:
    metrics = json.loads(stdout.strip().splitlines()[-1])
    assert set(METRIC_NAMES) <= set(metrics) <= set(METRIC_NAMES) | set(OPTIONAL_METRIC_NAMES)  # METEOR needs Java
    assert all(isinstance(value, float) and 0.0 <= value for value in metrics.values())
    results = json.loads(results_path.read_text())
    assert len(results) == TEST_IMAGES
    assert len({row["image_id"] for row in results}) == TEST_IMAGES
    assert all(set(row) == {"image_id", "caption", "scores"} and isinstance(row["caption"], str) for row in results)
    assert all(set(row["scores"]) == set(metrics) for row in results)  # each image's own scores
    return metrics


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_evaluate_writes_results_and_prints_metrics(tiny_checkpoint, tmp_path, capsys, dtype):
    checkpoint, data, _ = tiny_checkpoint
    out = tmp_path / "results.json"
    assert evaluate_cli.main(["--checkpoint", str(checkpoint), "--data", str(data), "--split", "test",
                              "--beam-size", "2", "--batch-size", "3", "--num-workers", "0", "--out", str(out),
                              "--dtype", dtype]) == 0
    check_outputs(capsys.readouterr().out, out)


def test_image_size_comes_from_trainer_state_unless_given(tiny_checkpoint, tmp_path):
    checkpoint, _, _ = tiny_checkpoint
    assert resolve_image_size(checkpoint, None) == IMAGE_SIZE
    assert resolve_image_size(checkpoint, 64) == 64
    assert resolve_image_size(tmp_path, None) == DEFAULT_IMAGE_SIZE


def test_checkpoint_without_vocab_is_a_clear_error(tiny_checkpoint, tmp_path):
    checkpoint, _, _ = tiny_checkpoint
    broken = tmp_path / "no_vocab"
    broken.mkdir()
    for name in ("config.json", "model.safetensors"):
        (broken / name).write_bytes((checkpoint / name).read_bytes())
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        load_for_inference(broken, None)


@pytest.mark.slow
def test_evaluate_cli_subprocess(tiny_checkpoint, tmp_path):
    checkpoint, data, _ = tiny_checkpoint
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "trainer.evaluate_checkpoint", "--checkpoint", checkpoint, "--data", data, "--split", "test",
         "--beam-size", "2", "--num-workers", "1", "--out", out],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "WORLD_SIZE": "1"}, timeout=600)
    assert completed.returncode == 0, completed.stderr
    check_outputs(completed.stdout, out)


@pytest.mark.slow
def test_evaluate_under_accelerate_two_processes_covers_each_image_once(tiny_checkpoint, tmp_path):
    checkpoint, data, _ = tiny_checkpoint
    single, sharded = tmp_path / "single.json", tmp_path / "sharded.json"
    common = ["--checkpoint", str(checkpoint), "--data", str(data), "--split", "test", "--beam-size", "2",
              "--num-workers", "1"]
    assert evaluate_cli.main([*common, "--out", str(single)]) == 0
    env = {key: value for key, value in os.environ.items() if key not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
         "-m", "trainer.evaluate_checkpoint", *common, "--out", str(sharded)],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert completed.returncode == 0, completed.stderr
    check_outputs(completed.stdout, sharded)

    def by_id(path):
        return {row["image_id"]: row["caption"] for row in json.loads(path.read_text())}

    assert by_id(sharded) == by_id(single)
