"""docs/extending.md's worked examples of a learning-rate schedule, a dataset source and a tracker, run as written: each
registers itself and is then selectable by name wherever its kind is chosen, and an unknown name of each kind fails
when the config or the command line is read, listing the choices."""
import json
import re
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState, GradientState

from data_pipelines import prepare
from data_pipelines.sources import SOURCES
from tests.test_data_prepare import make_image, read_shards
from trainer import train
from trainer.config.help import config_help
from trainer.config.schema import load_config
from trainer.training.schedules import LR_SCHEDULES, TEACHER_FORCING_SCHEDULES, lr_multiplier
from trainer.training.trackers import TRACKERS, build_trackers, start_trackers

REPO = Path(__file__).resolve().parents[1]


def example(heading: str) -> str:
    """The one Python block of the section ``## heading`` of docs/extending.md."""
    text = (REPO / "docs" / "extending.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return code


@pytest.fixture
def registered(request):
    """Runs the example of section ``request.param`` = (heading, registry); yields the names it registered and
    removes them afterwards (the registries are the library's own)."""
    heading, registry = request.param
    before = set(registry)
    exec(compile(example(heading), f"docs/extending.md: {heading}", "exec"), {"__name__": "docs_example"})
    added = sorted(set(registry) - before)
    yield added
    for name in added:
        del registry[name]


@pytest.mark.parametrize("registered", [("A learning-rate schedule", LR_SCHEDULES)], indirect=True)
def test_a_registered_lr_schedule_is_selected_by_its_name(registered):
    assert registered == ["linear"]
    config = load_config(None, ["data.root=unused", "schedule.name=linear", "schedule.warmup_steps=2",
                                "train.max_steps=10"])
    assert config.schedule.name == "linear"
    assert [lr_multiplier(step, 10, config.schedule) for step in range(12)] == [
        0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0, 0.0]  # the docs' numbers
    assert 'schedule.name = "cosine"  (one of "cosine", "step", "constant", "wsd", "linear")' in config_help()


@pytest.mark.parametrize("override, message", [
    ("schedule.name=cubic", "config key 'schedule.name': 'cubic' is not one of ['cosine', 'step', 'constant', 'wsd']"),
    ("teacher_forcing.schedule=cubic", "config key 'teacher_forcing.schedule': 'cubic' is not one of ['constant', "
     "'linear', 'exponential', 'inverse_sigmoid']"),
    ("logging.trackers=[tensorboard,neptune]", "config key 'logging.trackers': 'neptune' is not one of ['tensorboard', "
     "'wandb', 'mlflow']")])
def test_an_unknown_name_fails_at_config_load_listing_the_choices(override, message):
    with pytest.raises(ValueError) as raised:
        load_config(None, ["data.root=unused", override])
    assert str(raised.value) == message
    with pytest.raises(SystemExit) as exited:  # the command line: one line, no traceback
        train.main([override, "data.root=unused"])
    assert exited.value.code == f"error: {message}"


def test_a_schedule_config_built_in_code_with_an_unknown_name_is_refused_not_cosine():
    config = load_config(None, ["data.root=unused"]).schedule
    config.name = "cubic"
    with pytest.raises(ValueError, match=r"^config key 'schedule.name': 'cubic' is not one of \['cosine'"):
        lr_multiplier(0, 10, config)
    assert "inverse_sigmoid" in TEACHER_FORCING_SCHEDULES


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="LR schedule 'cosine' is already registered"):
        LR_SCHEDULES.register("cosine", lambda i, max_steps, end, config: 1.0)
    with pytest.raises(ValueError, match="must be a word"):
        SOURCES.register("../x", SOURCES["csv"])


@pytest.mark.parametrize("registered", [("A dataset source", SOURCES)], indirect=True)
def test_a_registered_source_is_a_prepare_subcommand(registered, tmp_path, capsys, monkeypatch):
    assert registered == ["captioned_folder"]
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps the help to the terminal's width
    with pytest.raises(SystemExit) as exited:
        prepare.main(["--help"])
    assert exited.value.code == 0
    assert re.search(r"\n +captioned_folder\s+a folder of IMAGE\.jpg \+ IMAGE\.txt \(one caption a line\)\n",
                     capsys.readouterr().out)
    folder = tmp_path / "photos"
    captions = {"dog": ["A dog on the grass.", "The dog runs."], "ball": ["A red ball."], "cat": ["A cat sleeps."]}
    for seed, (name, lines) in enumerate(captions.items()):
        make_image(folder / f"{name}.jpg", seed)
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"--out .* is the input .* \(--folder\)"):  # the source's input_paths
        prepare.run(["captioned_folder", "--folder", folder, "--out", folder])
    manifest = prepare.run(["captioned_folder", "--folder", folder, "--split", "val", "--out", tmp_path / "out",
                            "--min-word-freq", "1", "--workers", "1", "--image-size", "32"])
    assert manifest["source"]["kind"] == "captioned_folder"
    assert {split: entry["images"] for split, entry in manifest["splits"].items()} == {"val": 3}
    samples = read_shards(tmp_path / "out")
    assert {key: sample["json"]["captions"] for key, sample in samples.items()} == captions
    with pytest.raises(SystemExit) as exited:
        prepare.main(["flickr30k", "--out", tmp_path / "other"])
    assert exited.value.code == 2
    assert re.search(r"invalid choice: 'flickr30k' \(choose from .*'karpathy'.*'captioned_folder'",
                     capsys.readouterr().err)


@pytest.mark.parametrize("registered", [("A tracker", TRACKERS)], indirect=True)
def test_a_registered_tracker_is_accepted_at_config_load_and_gets_the_logged_scalars(registered, tmp_path):
    assert registered == ["jsonl"]
    config = load_config(None, ["data.root=unused", f"output_dir={tmp_path}", "logging.trackers=[tensorboard,jsonl]"])
    assert config.logging.trackers == ["tensorboard", "jsonl"]
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    try:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True, log_with=build_trackers(config.logging.trackers, config.output_dir),
                                  project_dir=config.output_dir)
        start_trackers(accelerator, config.logging.trackers, {"seed": 0})
        accelerator.log({"train/loss": 1.5, "train/lr": 0.0004}, step=3)
        accelerator.end_training()
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    lines = (tmp_path / "scalars.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"step": 3, "train/loss": 1.5, "train/lr": 0.0004}]
    assert list((tmp_path / "tensorboard").iterdir())  # tensorboard still logs beside it
