"""benchmarks.scst_ablation: every row is a valid SCST config for the demo's two processes, the demo's own SCST run
stands for the default row only when no time budget decided its end, and the table shows each row's gain."""
import json
from pathlib import Path

import pytest
import yaml

from benchmarks.scst_ablation import ROWS, demo_default, markdown
from trainer.config.schema import load_config
from trainer.training.batch_plan import plan_for

REPO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo_scst.yaml"


@pytest.mark.parametrize("name", sorted(ROWS))
def test_row_overrides_make_a_valid_scst_config_for_two_processes(name):
    config = load_config(REPO_CONFIG, ROWS[name][1])
    assert config.train.objective == "scst"
    for override in ROWS[name][1]:
        key, value = override.split("=", 1)
        section, field = key.split(".")
        actual = getattr(getattr(config, section), field)
        assert actual == (value if isinstance(actual, str) else type(actual)(value))
    assert plan_for(config.train, world_size=2).global_batch_size == config.train.global_batch_size


@pytest.mark.parametrize("reason, recipe, reused", [("plateau", "", True), ("max_steps", "", True),
                                                    ("budget", "", False), ("signal", "", False),
                                                    ("plateau", "eval:\n  best_min_z: 0.0\n", False),
                                                    ("plateau", "optim:\n  lr: 5.0e-5\n", False)])
def test_the_demo_run_is_the_default_row_only_when_it_ran_this_recipe_and_no_budget_ended_it(tmp_path, reason,
                                                                                          recipe, reused):
    (tmp_path / "train_scst").mkdir()
    summary = {"stop_reason": reason, "steps": 150, "best_step": 75, "wall_seconds": 90.0}
    (tmp_path / "train_scst" / "run_summary.json").write_text(json.dumps(summary))
    ran = yaml.safe_load(REPO_CONFIG.read_text())
    for section, values in (yaml.safe_load(recipe) or {}).items():
        ran[section].update(values)
    ran["train"].update(init_from=str(tmp_path / "xe"), max_minutes=3.5)  # what the demo sets differs, and may
    (tmp_path / "train_scst" / "config.yaml").write_text(yaml.safe_dump(ran))
    (tmp_path / "evaluate.log").write_text("INFO something\n" + json.dumps({"CIDEr": 2.0, "Bleu_4": 0.5}) + "\n")
    row = demo_default(tmp_path)
    assert (row == {"summary": summary, "test": {"CIDEr": 2.0, "Bleu_4": 0.5}}) if reused else row is None


def test_the_table_shows_each_rows_gain_and_the_mean_only_where_every_work_dir_has_it():
    results = [{"work": "a", "row": "default", "xe_test_cider": 2.0, "test": {"CIDEr": 2.2}, "gain": 0.1,
                "best_step": 50, "steps": 150},
               {"work": "b", "row": "default", "xe_test_cider": 4.0, "test": {"CIDEr": 4.2}, "gain": 0.05,
                "best_step": 25, "steps": 125},
               {"work": "a", "row": "lr_5e-5", "xe_test_cider": 2.0, "test": {"CIDEr": 1.9}, "gain": -0.05,
                "best_step": 0, "steps": 100}]
    lines = markdown(results, ["default", "lr_5e-5"], ["a", "b"]).splitlines()
    assert lines[2] == "| XE | the cross-entropy best the rows start from | 2.000 | 4.000 | - |"
    assert lines[3].endswith("| 2.200 (+10.0%), 50 / 150 | 4.200 (+5.0%), 25 / 125 | +7.5% |")
    assert lines[4].endswith("| 1.900 (-5.0%), 0 / 100 | - | - |")
