"""The demo's two training stages (launch/demo.sh) on the built-in ``shapes`` preset, on this device, one process:
synthetic scenes -> prepare -> feature cache -> XE (configs/demo.yaml) -> SCST (configs/demo_scst.yaml) -> test
CIDEr-D of both best checkpoints, next to the CPU figures of the README (2 CPU processes, the same global batch).

``mixture``: the stages train on a weighted mixture (``data.sources``, weights 1:1) of the ``shapes`` and ``toys``
presets (half the images each), one feature cache per source and one vocabulary of both (``prepare vocab``); each
stage's test CIDEr-D is then the mean of the two sources' (listed under ``sources``); no CPU figure compares."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import REPO
from data_pipelines import prepare
from data_pipelines.features import extract_features
from data_pipelines.mixture_vocab import build_mixture_vocabulary
from data_pipelines.safe_write import open_output
from data_pipelines.synthetic import generate

# README.md, "What the demo reaches": bash launch/demo.sh on 2 CPU processes (test split, 300 images x 5 references)
CPU_TEST_CIDER = {"xe": 6.219, "xe_scst": 6.587}
SMOKE_DECODING = ["--beam-size", "1", "--max-len", "4", "--batch-size", "8"]
SMOKE_OVERRIDES = ["train.global_batch_size=8", "train.micro_batch_size=4", "train.max_steps=2", "eval.every_steps=0", "eval.patience=0",
                   "checkpoint.every_steps=0", "data.num_workers=0",
                   "eval.batch_size=8", "eval.max_len=4", "scst.max_len=4", "logging.every_steps=1"]


def _run(arguments: list, deadline: float, log: Path) -> str:
    """Run ``python ARGUMENTS`` in the repository; its output goes to ``log``; the last line is returned."""
    remaining = deadline - time.monotonic()
    if remaining < 5:
        raise TimeoutError(f"time budget spent before: {' '.join(map(str, arguments[:3]))}")
    with open_output(log, "a") as output:
        output.write(f"$ python {' '.join(map(str, arguments))}\n")
        output.flush()
        completed = subprocess.run([sys.executable, *map(str, arguments)], cwd=REPO, stdout=subprocess.PIPE,
                                   stderr=output, text=True, timeout=remaining)
        output.write(completed.stdout)
    if completed.returncode != 0:
        lines = log.read_text(encoding="utf-8").strip().splitlines()
        reason = ([line for line in lines if "error" in line.lower()] or lines or [""])[-1][-500:]
        raise RuntimeError(f"python {' '.join(map(str, arguments[:3]))} exited {completed.returncode}: {reason}")
    lines = completed.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _source(work: Path, preset: str, num_images: int, image_size: int, shard_size: int, smoke: bool) -> tuple[Path, Path]:
    """(prepared dataset, feature cache) of ``num_images`` synthetic images of ``preset`` under ``work``."""
    synthetic, prepared, features = work / "synthetic", work / "prepared", work / "features"
    # the data stages in this process (the demo runs the same functions through their CLIs): fewer interpreter starts
    source = generate(synthetic, num_images=num_images, seed=0, image_size=image_size if smoke else None,
                      preset=preset)
    prepare.run(["karpathy", "--json", source, "--images", synthetic, "--out", prepared, "--image-size", image_size,
                 "--shard-size", shard_size, "--workers", 2])
    extract_features(prepared, features, "none", image_size, show_progress=False)
    return prepared, features


def mixture_overrides(work: Path, sources: dict[str, tuple[Path, Path]]) -> list[str]:
    """The data.* overrides of a 1:1 mixture of ``sources`` (name -> (prepared, features)), with their vocabulary."""
    vocab = work / "mixture_vocab.json"
    build_mixture_vocabulary([str(prepared) for prepared, _ in sources.values()]).save(vocab)
    entries = ", ".join(f"{{root: {prepared}, features: {features}, name: {name}}}"
                        for name, (prepared, features) in sources.items())
    return ["data.root=", "data.features=null", f"data.sources=[{entries}]", f"data.vocab={vocab}"]


def run(work: Path, deadline: float, smoke: bool, mixture: bool = False) -> dict:
    num_images, image_size, shard_size = (40, 64, 10) if smoke else (3000, 128, 100)
    overrides = SMOKE_OVERRIDES if smoke else []
    log, started = work / "xe_scst.log", time.monotonic()
    presets = ("shapes", "toys") if mixture else ("shapes",)
    per_source = num_images // len(presets)
    sources = {preset: _source(work / preset if mixture else work, preset, per_source, image_size, shard_size, smoke)
               for preset in presets}
    data = [*(mixture_overrides(work, sources) if mixture else
              [f"data.root={sources['shapes'][0]}", f"data.features={sources['shapes'][1]}"]),
            f"data.image_size={image_size}", "model.encoder_weights=none"]
    stages, result = {}, {"preset": "+".join(presets), "images": per_source * len(presets),
                          "cpu_test_cider": {} if mixture else CPU_TEST_CIDER, "log": str(log)}
    for stage, config, extra in (("xe", "configs/demo.yaml", []),
                                 ("xe_scst", "configs/demo_scst.yaml", [f"train.init_from={work / 'xe' / 'best'}"])):
        stage_started = time.monotonic()
        _run(["trainer/train.py", "--config", config, f"output_dir={work / stage}", *data, *extra, *overrides],
             deadline, log)
        stages[stage] = {"train_s": round(time.monotonic() - stage_started, 1)}
    for stage in stages:
        scores = {}
        for preset, (prepared, features) in sources.items():
            metrics = json.loads(_run(["-m", "trainer.evaluate_checkpoint", "--checkpoint", work / stage / "best",
                                       "--data", prepared, "--features", features, "--split", "test", "--out",
                                       work / f"results_{stage}_{preset}.json", *SMOKE_DECODING * smoke], deadline, log))
            scores[preset] = {"test_cider": metrics["CIDEr"], "test_bleu_4": metrics["Bleu_4"]}
        stages[stage].update({name: sum(score[name] for score in scores.values()) / len(scores)
                              for name in ("test_cider", "test_bleu_4")})
        if mixture:
            stages[stage]["sources"] = scores
    return {**result, "stages": stages, "wall_s": round(time.monotonic() - started, 1)}
