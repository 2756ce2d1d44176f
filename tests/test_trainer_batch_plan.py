"""train.global_batch_size -> per-process micro-batch and gradient accumulation for each world size."""
import pytest

from trainer.config.sections import TrainSection
from trainer.training.batch_plan import plan_batches, plan_for


@pytest.mark.parametrize("world_size, micro, accumulation", [(1, 32, 8), (2, 32, 4), (4, 32, 2), (8, 32, 1)])
def test_capped_micro_batch_keeps_the_lanes(world_size, micro, accumulation):
    plan = plan_batches(world_size, global_batch_size=256, micro_batch_size=32)
    assert (plan.micro_batch_size, plan.accumulation, plan.lanes) == (micro, accumulation, 8)
    assert plan.micro_batch_size * plan.accumulation * world_size == 256
    lanes = [lane for rank in range(world_size) for lane in plan.lanes_of(rank)]
    assert lanes == list(range(8))  # every lane trained by exactly one process
    assert plan.describe() == f"global batch 256 = {world_size} process(es) x micro-batch {micro} x accumulation " \
                              f"{accumulation}"


@pytest.mark.parametrize("world_size, micro", [(1, 64), (2, 32), (16, 4)])
def test_without_a_cap_each_process_takes_its_share(world_size, micro):
    plan = plan_batches(world_size, global_batch_size=64)
    assert (plan.micro_batch_size, plan.accumulation) == (micro, 1)


def test_more_processes_than_lanes_take_smaller_micro_batches():
    plan = plan_batches(16, global_batch_size=256, micro_batch_size=32)
    assert (plan.micro_batch_size, plan.accumulation, plan.lanes) == (16, 1, 16)


@pytest.mark.parametrize("kwargs, message", [
    (dict(world_size=3, global_batch_size=64), "not divisible by the 3 process(es)"),
    (dict(world_size=2, global_batch_size=96, micro_batch_size=32),
     "48 images per process is not a multiple of train.micro_batch_size=32"),
    (dict(world_size=1, global_batch_size=64, micro_batch_size=24), "64 images per process is not a multiple of "
                                                                    "train.micro_batch_size=24"),
    (dict(world_size=1, global_batch_size=0), "train.global_batch_size must be >= 1, got 0"),
])
def test_indivisible_settings_are_errors(kwargs, message):
    with pytest.raises(ValueError) as error:
        plan_batches(**kwargs)
    assert message in str(error.value)


def test_config_sections_map_to_plans():
    # the default: 32 images per optimizer step, whatever the number of processes
    assert plan_for(TrainSection(), 1).describe() == "global batch 32 = 1 process(es) x micro-batch 32 x accumulation 1"
    assert plan_for(TrainSection(), 2).describe() == "global batch 32 = 2 process(es) x micro-batch 16 x accumulation 1"
    section = TrainSection(global_batch_size=64, micro_batch_size=16)
    assert (plan_for(section, 2).micro_batch_size, plan_for(section, 2).accumulation) == (16, 2)
