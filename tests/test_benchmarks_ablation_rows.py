"""Every ablation row's overrides form a valid training config on top of configs/demo.yaml, with a batch plan for the
single process the ablation trains with (a row that fails only after its data is built and other rows have run for an
hour is a lost night)."""
import pytest

from benchmarks.ablation import ROWS, row_config
from trainer.training.batch_plan import plan_for


@pytest.mark.parametrize("name", sorted(ROWS))
def test_row_overrides_make_a_valid_config_with_a_batch_plan(name):
    config = row_config(name)
    for override in ROWS[name][1]:
        key, value = override.split("=", 1)
        section, field = key.split(".")
        actual = getattr(getattr(config, section), field)
        assert actual == (value if isinstance(actual, str) else type(actual)(value))
    plan = plan_for(config.train, world_size=1)
    assert plan.global_batch_size == config.train.global_batch_size
