"""A short training run on a non-default synthetic preset (toys: other words, wording and backgrounds) with the demo
config: the pipeline runs end to end, the caption loss falls, and the learning-curve picture is drawn from the run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SMALL = ["model.hidden_dim=64", "model.attention_dim=64", "train.global_batch_size=16", "train.micro_batch_size=16",
         "train.max_steps=80",
         "eval.every_steps=40", "eval.batch_size=32", "eval.max_len=12", "checkpoint.every_steps=80",
         "logging.every_steps=5", "schedule.warmup_steps=5", "data.num_workers=0"]

pytestmark = pytest.mark.slow


def run(*command, timeout=600):
    result = subprocess.run([PYTHON, *map(str, command)], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_demo_config_learns_the_toys_preset(tmp_path):
    run("-m", "data_pipelines.synthetic", "--preset", "toys", "--out", tmp_path / "syn", "--num-images", "200",
        "--image-size", "64")
    run("-m", "data_pipelines.prepare", "karpathy", "--json", tmp_path / "syn" / "dataset_synthetic.json", "--images",
        tmp_path / "syn", "--out", tmp_path / "prep", "--image-size", "64", "--shard-size", "20", "--workers", "1")
    run("-m", "data_pipelines.features", "--data", tmp_path / "prep", "--out", tmp_path / "feat", "--weights", "none",
        "--image-size", "64")
    out = tmp_path / "train"
    run("trainer/train.py", "--config", "configs/demo.yaml", f"output_dir={out}", f"data.root={tmp_path / 'prep'}",
        f"data.features={tmp_path / 'feat'}", "data.image_size=64", *SMALL)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    ce = [entry["train/ce"] for entry in log if "train/ce" in entry]
    assert len(ce) == 16 and ce[-1] < 0.5 * ce[0]  # the toys vocabulary is being learned
    val_steps = [entry["step"] for entry in log if "val/CIDEr" in entry]
    assert val_steps == [40, 80]

    picture = tmp_path / "curve.png"
    points = json.loads(run("-m", "benchmarks.learning_curve", "--run", out, "--out", picture, "--blind", "0.5")
                        .stdout.strip().splitlines()[-1])
    assert [p["step"] for p in points] == val_steps and points[0]["minutes"] < points[1]["minutes"]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
