"""The README's main job, shortened: launch/demo.sh end to end (2 CPU processes), then again to check it reuses work."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.evaluation.metrics import meteor

REPO = Path(__file__).resolve().parents[1]
SMALL = ["model.hidden_dim=32", "model.attention_dim=32", "train.global_batch_size=8", "train.micro_batch_size=4",
         "train.max_steps=4", "eval.batch_size=8", "eval.max_len=6", "eval.every_steps=2", "checkpoint.every_steps=2",
         "logging.every_steps=1"]

pytestmark = pytest.mark.slow


def run_demo(work: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "DEMO_NUM_IMAGES": "60", "DEMO_IMAGE_SIZE": "32", "DEMO_SHARD_SIZE": "8"}
    result = subprocess.run(["bash", "launch/demo.sh", "--work", str(work), *SMALL], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_demo_produces_every_stage_and_reuses_them(tmp_path):
    work = tmp_path / "demo"
    first = run_demo(work)
    assert (work / "synthetic" / "dataset_synthetic.json").is_file()
    assert json.loads((work / "prepared" / "manifest.json").read_text())["splits"]["test"]["images"] == 6
    assert (work / "features" / "manifest.json").is_file()
    state = json.loads((work / "train" / "best" / "trainer_state.json").read_text())
    assert state["world_size"] == 2  # the CPU path launched two processes
    assert (work / "train" / "checkpoints" / "step_00000004" / "model.safetensors").is_file()
    results = json.loads((work / "results_test.json").read_text())
    assert len(results) == 6 and all(set(r) == {"image_id", "caption", "scores"} for r in results)
    assert len(list((work / "attention").glob("*.png"))) == 4
    curve = json.loads((work / "learning_curve.json").read_text())  # val CIDEr-D points of learning_curve.png
    assert [point["step"] for point in curve] == [2, 4] and (work / "learning_curve.png").stat().st_size > 0
    assert "blind baseline" in first.stdout and "tensorboard --logdir" in first.stdout
    scst_state = json.loads((work / "train_scst" / "best" / "trainer_state.json").read_text())
    assert scst_state["train_config"]["train"]["objective"] == "scst" and (work / "results_test_xe.json").is_file()
    assert "XE best (test)" in first.stdout and "XE+SCST best (test)" in first.stdout
    assert "best reference" in first.stdout and "SCST stage: test CIDEr-D" in first.stdout
    gap_lines = first.stdout.split("gap to the best reference")[1].splitlines()[1:3]  # one per stage
    assert [line.split()[:2] for line in gap_lines] == [["XE", "best"], ["XE+SCST", "best"]]
    assert f"report:          {work}/report/index.html" in first.stdout and (work / "report" / "index.html").is_file()
    if meteor.unavailable_reason() is None:  # with Java, validation logs METEOR (TensorBoard and train_log.jsonl)
        assert '"val/METEOR"' in (work / "train" / "train_log.jsonl").read_text()
    metrics = json.loads(first.stdout.strip().splitlines()[-1])
    assert {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"} <= set(metrics) <= \
        {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L", "METEOR"}  # METEOR where Java is

    second = run_demo(work)
    for stage in ("synthetic dataset: reusing", "prepare: reusing", "feature cache: reusing"):
        assert stage in second.stdout
    assert json.loads(second.stdout.strip().splitlines()[-1]) == metrics  # same best checkpoint, same test metrics
