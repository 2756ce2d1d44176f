"""trainer.demo in-process, with a stand-in interpreter for its stages: which commands run in which order with which
arguments and environment, what a rerun reuses, the budget split, the summary and the last line; the command line and
DEMO_* variables. (tests/test_demo.py runs the real stages, slowly.)"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.demo.arguments import REPO, DemoError, parse_arguments
from trainer.demo.budget import Budget
from trainer.demo.run import main, run_demo
from trainer.demo.stages import StageRunner

METRICS = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"]
STAND_IN = '''#!{python}
"""Logs each call with its environment; writes or prints what each stage's caller reads."""
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps({{"args": args, "omp": os.environ.get("OMP_NUM_THREADS"),
                          "offline": os.environ.get("HF_HUB_OFFLINE")}}) + "\\n")
if args[0] == "-c":
    sys.exit(1)  # no CUDA
value = lambda flag: args[args.index(flag) + 1]
metrics = {metrics}
if args[1] == "data_pipelines.synthetic":
    Path(value("--out")).mkdir(parents=True)
    images = [{{"split": split, "filename": f"{{index}}.png"}} for index, split in enumerate(["train", "test", "test"])]
    Path(value("--out"), "dataset_synthetic.json").write_text(json.dumps({{"images": images}}))
elif args[1] in ("data_pipelines.prepare", "data_pipelines.features"):
    Path(value("--out")).mkdir(parents=True)
    Path(value("--out"), "manifest.json").write_text("{{}}")
elif args[1] == "accelerate.commands.launch":
    Path(next(arg for arg in args if arg.startswith("output_dir=")).split("=", 1)[1], "best").mkdir(parents=True, exist_ok=True)
elif args[1] == "trainer.evaluate_checkpoint":
    print("decoding the test split")
    print(json.dumps(dict.fromkeys(metrics, 0.5 if "train_scst" in value("--checkpoint") else 0.4)))
elif args[1] == "trainer.baselines":
    row = dict.fromkeys(metrics, 0.1)
    gap = {{"gap_on_references": 0.2, "gap_on_other_captions": 0.3, "share_of_captions_that_are_references": 0.25}}
    print("scoring")
    print(json.dumps({{"blind": row, "human": row, "best_reference": row, "blind_caption": "a red square",
                      "results": dict.fromkeys(args[args.index("--results") + 1:], gap)}}))
elif args[1] == "benchmarks.learning_curve":
    print("[]")
'''


@pytest.fixture
def stand_in(tmp_path):
    """(interpreter, environment without DEMO_* or OMP_NUM_THREADS, log of the calls)."""
    python = tmp_path / "python"
    python.write_text(STAND_IN.format(python=sys.executable, metrics=METRICS))
    python.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith("DEMO_") and key != "OMP_NUM_THREADS"}
    return python, {**environ, "STAND_IN_LOG": str(log)}, log


def demo_run(stand_in, work: Path, *argv: str, **variables: str) -> list[dict]:
    """The demo on ``work`` with a clock that stands still; the stand-in's calls."""
    python, environ, log = stand_in
    log.unlink(missing_ok=True)
    environ = {**environ, **variables}
    run_demo(parse_arguments(["--work", str(work), *argv], environ), StageRunner(str(python), environ, clock=lambda: 0))
    return [json.loads(line) for line in log.read_text().splitlines()]


def stage_of(call: dict) -> str:
    return call["args"][1] if call["args"][0] == "-m" else call["args"][0]


def test_the_stages_run_in_order_with_the_budget_split_and_the_summary(stand_in, tmp_path, capfd):
    work = tmp_path / "work"
    calls = demo_run(stand_in, work, "train.max_steps=4", DEMO_MINUTES="20")
    out = capfd.readouterr().out
    assert [stage_of(call) for call in calls] == [
        "data_pipelines.synthetic", "data_pipelines.prepare", "data_pipelines.features", "-c",
        "accelerate.commands.launch", "accelerate.commands.launch", "trainer.evaluate_checkpoint",
        "trainer.evaluate_checkpoint", "trainer.caption", "trainer.baselines", "benchmarks.learning_curve"]
    assert all(call["offline"] == "1" for call in calls)
    assert [call["omp"] for call in calls if stage_of(call) != "accelerate.commands.launch"] == [None] * 9
    xe, scst = (call["args"] for call in calls[4:6])
    assert xe[:6] == ["-m", "accelerate.commands.launch", "--config_file", "launch/cpu_2proc.yaml", "trainer/train.py",
                      "--config"] and calls[4]["omp"] == calls[5]["omp"] == "1"
    # 20 min less 90 s for the evaluations and 3 min for SCST; SCST then gets all but the 90 s
    assert "train.max_minutes=15.50" in xe and "train.max_minutes=18.50" in scst
    assert xe[-1] == scst[-1] == "train.max_steps=4"
    assert f"train.init_from={work}/train/best" in scst and f"output_dir={work}/train_scst" in scst
    assert calls[8]["args"][-2:] == [f"{work}/synthetic/1.png", f"{work}/synthetic/2.png"]  # the test images
    assert calls[9]["args"][-2:] == [f"{work}/results_test_xe.json", f"{work}/results_test.json"]

    assert (work / "demo_inputs.json").read_text() == (
        '{"image_size": "128", "shard_size": "100", "synthetic_num_images": "3000", "synthetic_seed": 0, '
        '"weights": "none"}\n')
    assert (work / "evaluate.log").read_text() == "decoding the test split\n" + json.dumps(dict.fromkeys(METRICS, 0.5)) \
        + "\n"
    assert (work / "learning_curve.json").read_text() == "[]\n"
    assert "\n== [0m0s] train: " in out and "XE+SCST best (test)         0.500    0.500" in out
    assert "SCST stage: test CIDEr-D 0.400 -> 0.500 (+25.0%)" in out
    assert "  XE best (test)         0.200 | 0.300 (25% of captions are references)" in out
    assert f"report:          {work}/report/index.html   (open it" in out
    assert json.loads(out.strip().splitlines()[-1]) == dict.fromkeys(METRICS, 0.5)

    again = demo_run(stand_in, work, "train.max_steps=4", DEMO_MINUTES="20")
    out = capfd.readouterr().out
    assert stage_of(again[0]) == "-c" and len(again) == len(calls) - 3  # data and features reused
    for reused in ("synthetic dataset: reusing", "prepare: reusing", "feature cache: reusing"):
        assert reused in out


def test_without_scst_the_cross_entropy_stage_gets_the_budget(stand_in, tmp_path, capfd):
    calls = demo_run(stand_in, tmp_path / "work", DEMO_SCST="0", DEMO_MINUTES="20")
    out = capfd.readouterr().out
    launches = [call["args"] for call in calls if stage_of(call) == "accelerate.commands.launch"]
    assert len(launches) == 1 and "train.max_minutes=18.50" in launches[0]
    assert [stage_of(call) for call in calls].count("trainer.evaluate_checkpoint") == 1
    assert "model (test)" in out and "SCST stage" not in out and "XE best" not in out


def test_a_stage_that_fails_ends_the_demo_with_its_status(stand_in, tmp_path, capsys):
    python, environ, _ = stand_in
    python.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(5)\n")
    assert main(["--work", str(tmp_path / "work")], {**environ, "PYTHON": str(python)}) == 5
    assert "data_pipelines.synthetic" in capsys.readouterr().err


def test_arguments_and_variables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    defaults = parse_arguments([], {})
    assert defaults.work == REPO / "runs" / "demo" and defaults.preset == "shapes" and defaults.scst
    assert (defaults.num_images, defaults.image_size, defaults.shard_size, defaults.weights) == ("3000", "128", "100",
                                                                                                 "none")
    assert defaults.synthetic_image_size == "" and defaults.budget_minutes == 15
    environ = {"DEMO_NUM_IMAGES": "60", "DEMO_IMAGE_SIZE": "32", "DEMO_SHARD_SIZE": "8", "DEMO_WEIGHTS": "imagenet",
               "DEMO_MINUTES": "3", "DEMO_SCST": "0"}
    args = parse_arguments(["a.b=1", "--preset", "toys", "--work", "w", "c=d"], environ)
    assert args.work == tmp_path / "w" and args.preset == "toys" and args.overrides == ["a.b=1", "c=d"]
    assert (args.num_images, args.image_size, args.synthetic_image_size, args.shard_size, args.weights) == (
        "60", "32", "32", "8", "imagenet")
    assert args.budget_minutes == 3 and not args.scst
    assert parse_arguments(["--preset", "toys"], {}).work == REPO / "runs" / "demo-toys"
    mine = parse_arguments(["--karpathy-json", "data.json", "--images", "."], {})
    assert (mine.karpathy_json, mine.images) == (str(tmp_path / "data.json"), str(tmp_path))


@pytest.mark.parametrize("argv, environ, message", [
    (["--bogus"], {}, "unknown argument '--bogus' (see --help)"),
    (["--work"], {}, "--work needs a value"),
    (["--karpathy-json", "x.json"], {}, "--karpathy-json needs --images ROOT"),
    ([], {"DEMO_MINUTES": "1.5"}, "DEMO_MINUTES='1.5': expected a whole number of minutes, at least 1"),
    ([], {"DEMO_MINUTES": "-3"}, "DEMO_MINUTES='-3': expected a whole number of minutes, at least 1"),
    ([], {"DEMO_MINUTES": "0"}, "DEMO_MINUTES='0': expected a whole number of minutes, at least 1"),
])
def test_bad_arguments_are_one_line_errors(argv, environ, message):
    with pytest.raises(DemoError, match="^" + message.replace("(", r"\(").replace(")", r"\)")) as refused:
        parse_arguments(argv, environ)
    assert refused.value.status == 2


def test_a_stage_never_gets_less_than_half_a_minute():
    assert Budget.of_minutes(4, scst=True).xe_minutes(elapsed_s=0) == "0.50"  # 240 s - 90 - 180 < 30 s
    assert Budget.of_minutes(15, scst=True).scst_minutes(elapsed_s=700) == "1.83"  # (900 - 700 - 90) / 60


def test_the_commands_that_run_the_demo(tmp_path):
    scripts = (REPO / "pyproject.toml").read_text()
    assert 'showattend-demo = "trainer.demo.run:main"' in scripts
    for command in (["bash", "launch/demo.sh", "--bogus"], [sys.executable, "-m", "trainer.demo", "--bogus"]):
        completed = subprocess.run(command, cwd=tmp_path if command[0] != "bash" else REPO, capture_output=True,
                                   text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert completed.returncode == 2 and completed.stderr == "demo: unknown argument '--bogus' (see --help)\n"
