"""train.global_batch_size through the CLI: 1 process accumulating 2 micro-batches and 2 processes with one each train
on the same images and give the same losses."""
import json

import pytest
from distributed_runs import logged, make_dataset, train

pytestmark = pytest.mark.slow
SAME_YAML = ["train.global_batch_size=8", "train.micro_batch_size=4", "train.max_steps=3", "checkpoint.every_steps=3",
             "logging.image_ids=true", "teacher_forcing.schedule=linear", "teacher_forcing.decay=0.2",
             "teacher_forcing.floor=0.5"]  # dropout and scheduled sampling on: their randomness must not depend on N


def image_ids(output_dir):
    return {record["step"]: record["image_ids"]
            for record in map(json.loads, (output_dir / "image_ids.jsonl").read_text().splitlines())}


def test_one_process_accumulating_equals_two_processes(tmp_path):
    dataset = make_dataset(tmp_path / "data")
    one, two = tmp_path / "one", tmp_path / "two"
    one_run = train(dataset, one, *SAME_YAML, processes=1)
    two_run = train(dataset, two, *SAME_YAML, processes=2)
    assert "global batch 8 = 1 process(es) x micro-batch 4 x accumulation 2" in one_run.stderr
    assert "global batch 8 = 2 process(es) x micro-batch 4 x accumulation 1" in two_run.stderr
    assert image_ids(one) == image_ids(two) and all(len(ids) == 8 for ids in image_ids(one).values())
    for step in (1, 2, 3):
        for tag in ("train/loss", "train/ce", "train/attention_reg"):
            assert logged(two)[step][tag] == pytest.approx(logged(one)[step][tag], abs=1e-5), (step, tag)


def test_indivisible_global_batch_is_refused(tmp_path):
    dataset = make_dataset(tmp_path / "data")
    result = train(dataset, tmp_path / "run", "train.global_batch_size=8", "train.micro_batch_size=3",
                   check=False, seconds=120)
    assert result.returncode != 0
    assert "train.global_batch_size=8 / 1 process(es) = 8 images per process is not a multiple of " \
           "train.micro_batch_size=3" in result.stderr
