"""The demo, stage by stage: data -> feature cache -> cross-entropy training -> self-critical training -> test-split
evaluation -> captions with attention maps -> baselines and summary -> learning curve. Every stage is the framework's
own command run as a subprocess, exactly as a user would run it; see HELP (``python -m trainer.demo --help``)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Mapping

from trainer.demo.arguments import HELP, DemoArguments, DemoError, HelpRequested, parse_arguments
from trainer.demo.budget import Budget
from trainer.demo.inputs import claim_work_dir, input_record
from trainer.demo.stages import StageRunner
from trainer.demo.summary import closing_lines, summary_lines

CAPTIONED_TEST_IMAGES = 4


def build_data(args: DemoArguments, runner: StageRunner) -> tuple[str, str]:
    """The synthetic scenes (or the user's Karpathy JSON) -> WebDataset shards + vocab -> frozen backbone features,
    each reused when already built. Returns the Karpathy JSON and its images root."""
    work, karpathy_json, images = args.work, args.karpathy_json, args.images
    if not karpathy_json:
        karpathy_json, images = str(work / "synthetic" / "dataset_synthetic.json"), str(work / "synthetic")
        if os.path.isfile(karpathy_json):
            runner.stage(f"synthetic dataset: reusing {work}/synthetic")
        else:
            runner.stage(f"synthetic dataset: {args.num_images} images, preset {args.preset}")
            drawn_size = ["--image-size", args.synthetic_image_size] if args.synthetic_image_size else []
            runner.run("-m", "data_pipelines.synthetic", "--out", f"{work}/synthetic", "--num-images", args.num_images,
                       "--seed", "0", "--preset", args.preset, *drawn_size)
    if (work / "prepared" / "manifest.json").is_file():
        runner.stage(f"prepare: reusing {work}/prepared")
    else:
        runner.stage(f"prepare karpathy -> {work}/prepared")
        runner.run("-m", "data_pipelines.prepare", "karpathy", "--json", karpathy_json, "--images", images, "--out",
                   f"{work}/prepared", "--image-size", args.image_size, "--shard-size", args.shard_size, "--workers", "2")
    # ResNet-50 is the slow part on a CPU: its features are computed once
    if (work / "features" / "manifest.json").is_file():
        runner.stage(f"feature cache: reusing {work}/features")
    else:
        runner.stage(f"feature cache -> {work}/features")
        runner.run("-m", "data_pipelines.features", "--data", f"{work}/prepared", "--out", f"{work}/features",
                   "--weights", args.weights, "--image-size", args.image_size)
    return karpathy_json, images


def training_launcher(runner: StageRunner) -> list[str]:
    """Every GPU if there are any, else 2 CPU processes (one thread each, set in the runner's environment) over gloo."""
    if runner.succeeds("-c", "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"):
        gpus = runner.output("-c", "import torch; print(torch.cuda.device_count())")
        return ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", gpus]
    runner.env["OMP_NUM_THREADS"] = "1"
    return ["-m", "accelerate.commands.launch", "--config_file", "launch/cpu_2proc.yaml"]


def train(args: DemoArguments, runner: StageRunner) -> tuple[Path, Path, Path | None]:
    """Cross-entropy (configs/demo.yaml), then self-critical (configs/demo_scst.yaml) from its best checkpoint unless
    DEMO_SCST=0; both with ``--resume auto`` (a rerun continues, or finds the run finished) and the same overrides.
    Returns the cross-entropy stage's checkpoint, the final checkpoint and the SCST run dir (None when skipped)."""
    launcher, budget, work = training_launcher(runner), Budget.of_minutes(args.budget_minutes, args.scst), args.work
    data = [f"data.root={work}/prepared", f"data.features={work}/features", f"data.image_size={args.image_size}",
            f"model.encoder_weights={args.weights}"]
    train_dir = work / "train"
    runner.stage(f"train: {' '.join([runner.python, *launcher])} trainer/train.py --config configs/demo.yaml --resume auto")
    runner.run(*launcher, "trainer/train.py", "--config", "configs/demo.yaml", "--resume", "auto",
               f"output_dir={train_dir}", *data, f"train.max_minutes={budget.xe_minutes(runner.elapsed_s())}",
               *args.overrides)
    xe_checkpoint = train_dir / "best"
    if not xe_checkpoint.is_dir():
        steps = sorted(path.name for path in (train_dir / "checkpoints").glob("step_*"))
        if not steps:
            raise DemoError(f"{train_dir}: training wrote neither best/ nor checkpoints/step_*")
        xe_checkpoint = train_dir / "checkpoints" / steps[-1]
    checkpoint, scst_dir = xe_checkpoint, None
    if args.scst:
        scst_dir = work / "train_scst"
        runner.stage(f"self-critical training from {xe_checkpoint}: trainer/train.py --config configs/demo_scst.yaml "
                     "--resume auto")
        runner.run(*launcher, "trainer/train.py", "--config", "configs/demo_scst.yaml", "--resume", "auto",
                   f"train.init_from={xe_checkpoint}", f"output_dir={scst_dir}", *data,
                   f"train.max_minutes={budget.scst_minutes(runner.elapsed_s())}", *args.overrides)
        checkpoint = scst_dir / "best"
    runner.env.pop("OMP_NUM_THREADS", None)
    return xe_checkpoint, checkpoint, scst_dir


def evaluate(runner: StageRunner, work: Path, checkpoint: Path, results: str, log: str, *report: str) -> str:
    """Batched beam search on the test split -> WORK/RESULTS (COCO results JSON; ``report``: ``--report DIR`` for the
    HTML report), its output also in WORK/LOG; returns the metrics line (its last)."""
    return runner.run_logged(work / log, "-m", "trainer.evaluate_checkpoint", "--checkpoint", str(checkpoint), "--data",
                             f"{work}/prepared", "--features", f"{work}/features", "--split", "test", "--out",
                             f"{work}/{results}", *report)


def json_object(line: str, command: str) -> dict:
    """The JSON object a stage printed as its last line ``line``; anything else ends the demo with one line."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise DemoError(f"{command} printed no JSON object on its last line: {line[-200:]!r}", 1)
    return value


def captioned_image_paths(karpathy_json: str, images: str) -> list[str]:
    """The first test images of the Karpathy JSON, as files under ``images``."""
    try:
        data, root = json.loads(Path(karpathy_json).read_text()), Path(images)
        tests = [image for image in data["images"] if image["split"] == "test"][:CAPTIONED_TEST_IMAGES]
        return [str(root / image.get("filepath", "") / image["filename"]) for image in tests]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DemoError(f"{karpathy_json}: cannot list its test images ({type(error).__name__}: {error})", 1) from None


def run_demo(args: DemoArguments, runner: StageRunner) -> None:
    work = args.work
    claim_work_dir(work, input_record(args))
    karpathy_json, images = build_data(args, runner)
    xe_checkpoint, checkpoint, scst_dir = train(args, runner)

    runner.stage(f"evaluate {checkpoint} on the test split")
    metrics = evaluate(runner, work, checkpoint, "results_test.json", "evaluate.log", "--report", f"{work}/report")
    results, xe_metrics = [f"{work}/results_test.json"], None
    if checkpoint != xe_checkpoint:
        runner.stage(f"evaluate the cross-entropy stage's {xe_checkpoint} on the test split")
        xe_metrics = json_object(evaluate(runner, work, xe_checkpoint, "results_test_xe.json", "evaluate_xe.log"),
                                 "trainer.evaluate_checkpoint")
        results.insert(0, f"{work}/results_test_xe.json")

    runner.stage(f"caption {CAPTIONED_TEST_IMAGES} test images with attention maps")
    runner.run("-m", "trainer.caption", "--checkpoint", str(checkpoint), "--attention-dir", f"{work}/attention",
               *captioned_image_paths(karpathy_json, images))

    runner.stage("baselines on the test split (python -m trainer.baselines)")
    baselines_output = runner.output("-m", "trainer.baselines", "--data", f"{work}/prepared", "--split", "test",
                                     "--results", *results)
    baselines = json_object(baselines_output.splitlines()[-1] if baselines_output else "", "trainer.baselines")
    model = json_object(metrics, "trainer.evaluate_checkpoint")
    for line in summary_lines(model, baselines, xe_metrics, work / "train", scst_dir, results):
        print(line, flush=True)

    runner.stage(f"learning curve -> {work}/learning_curve.png")
    with open(work / "learning_curve.json", "wb") as curve:
        runner.run("-m", "benchmarks.learning_curve", "--run", str(work / "train"), "--out", f"{work}/learning_curve.png",
                   "--blind", str(baselines["blind"]["CIDEr"]), "--title", f"{work.name}: val CIDEr-D", stdout=curve)

    runner.stage("done")
    for line in closing_lines(work, work / "train", checkpoint, runner.elapsed_s(), metrics):
        print(line, flush=True)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``python -m trainer.demo [--work DIR] [--preset NAME | --karpathy-json FILE --images ROOT] [key=value ...]``."""
    environ = os.environ if environ is None else environ
    try:
        args = parse_arguments(sys.argv[1:] if argv is None else argv, environ)
        run_demo(args, StageRunner(environ.get("PYTHON") or sys.executable, environ))
    except HelpRequested:
        print(HELP)
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130
    return 0
