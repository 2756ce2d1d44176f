"""A checkpoint written by N processes resumes on M: same epoch and global sample position, no image of the epoch
seen twice, none skipped beyond what one global batch leaves over (checked through logging.image_ids)."""
import json

import pytest
from distributed_runs import make_dataset, train

from data_pipelines.stream_samples import BrokenSampleCounter, read_tar_samples
from trainer.checkpointing.checkpoint import step_checkpoint_dir, verify_checkpoint

pytestmark = pytest.mark.slow
GLOBAL_BATCH = 8
SAME_YAML = [f"train.global_batch_size={GLOBAL_BATCH}", "train.micro_batch_size=4", "train.max_steps=6",
             "checkpoint.every_steps=100", "logging.image_ids=true"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


def train_image_ids(dataset) -> set[str]:
    manifest = json.loads((dataset / "manifest.json").read_text())
    shards = [str(dataset / name) for name in manifest["splits"]["train"]["shards"]]
    return {json.loads(raw["json"])["image_id"] for raw in read_tar_samples(shards, BrokenSampleCounter())}


def steps_by_epoch(output_dir) -> dict[int, list[str]]:
    """Image ids of every logged step, concatenated per epoch (a resumed run's steps replace earlier ones)."""
    records = {}
    for record in map(json.loads, (output_dir / "image_ids.jsonl").read_text().splitlines()):
        records[record["step"]] = record
    epochs: dict[int, list[str]] = {}
    for step in sorted(records):
        epochs.setdefault(records[step]["epoch"], []).extend(records[step]["image_ids"])
    return epochs


@pytest.mark.parametrize("before, after, stop_at", [(2, 1, 2), (1, 2, 3)])
def test_resume_on_another_world_size_keeps_the_epoch_position(dataset, tmp_path, before, after, stop_at):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(dataset, straight, *SAME_YAML, processes=before)
    train(dataset, resumed, *SAME_YAML, f"train.stop_at_step={stop_at}", processes=before)
    result = train(dataset, resumed, *SAME_YAML, processes=after, resume="latest")
    assert f"checkpoint written by {before} process(es), resuming on {after}" in result.stderr
    state = verify_checkpoint(step_checkpoint_dir(resumed, 6))
    assert state["world_size"] == after and state["step"] == 6

    epochs, all_images = steps_by_epoch(resumed), train_image_ids(dataset)
    steps_per_epoch = len(all_images) // GLOBAL_BATCH  # 38 images: 4 steps of 8, 6 images left over
    epoch_0 = epochs[0]
    assert len(epoch_0) == steps_per_epoch * GLOBAL_BATCH
    assert len(set(epoch_0)) == len(epoch_0)  # no image twice
    assert len(all_images - set(epoch_0)) < GLOBAL_BATCH  # none skipped beyond one global batch
    assert len(epochs[1]) == 2 * GLOBAL_BATCH  # steps 5 and 6 start epoch 1
    assert epochs == steps_by_epoch(straight)  # the data order does not depend on the world size
