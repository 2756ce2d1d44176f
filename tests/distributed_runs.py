"""Helpers for tests that run `trainer/train.py` as real (multi-)process CLI runs: a tiny dataset, free ports, launch
commands bounded by `timeout -k 10`, and readers for the run's log and checkpoints."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TRAIN_SCRIPT = str(REPO / "trainer" / "train.py")
TINY = ["model.encoder_weights=none", "model.feature_dim=16", "model.embed_dim=16", "model.attention_dim=16",
        "model.hidden_dim=32", "data.image_size=32", "eval.batch_size=8", "eval.max_len=8", "eval.every_steps=0",
        "logging.every_steps=1", "data.num_workers=1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def make_dataset(root: Path, num_images: int = 48, shard_size: int = 5) -> Path:
    """Synthetic 32 px images prepared into shards of ``shard_size`` (48 images: 38 train in 8 shards, 5 val)."""
    subprocess.run([PYTHON, "-m", "data_pipelines.synthetic", "--out", str(root / "syn"), "--num-images",
                    str(num_images), "--seed", "0", "--image-size", "32"], check=True, cwd=REPO, capture_output=True)
    subprocess.run([PYTHON, "-m", "data_pipelines.prepare", "karpathy", "--json",
                    str(root / "syn" / "dataset_synthetic.json"), "--images", str(root / "syn"), "--out",
                    str(root / "prep"), "--image-size", "32", "--shard-size", str(shard_size), "--min-word-freq", "1",
                    "--workers", "1"], check=True, cwd=REPO, capture_output=True)
    return root / "prep"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bounded(seconds: int, command: list[str]) -> list[str]:
    """``command`` under ``timeout -k 10 seconds`` (SIGTERM, then SIGKILL 10 s later: shared/DESIGN.md item 12)."""
    return ["timeout", "-k", "10", str(seconds), *command]


def accelerate_launch(*options: str) -> list[str]:
    return [PYTHON, "-m", "accelerate.commands.launch", *options]


def single_machine(processes: int) -> list[str]:
    """Launcher prefix for ``processes`` CPU processes on this machine (1: plain python)."""
    if processes == 1:
        return [PYTHON]
    return accelerate_launch("--multi_gpu", "--num_processes", str(processes), "--main_process_port",
                             str(free_port()), "--mixed_precision", "no", "--dynamo_backend", "no")


def machine_of(machines: int, processes: int, rank: int, port: int) -> list[str]:
    """Launcher prefix of loopback machine ``rank`` (``processes`` in total over ``machines``)."""
    return accelerate_launch("--multi_gpu", "--num_machines", str(machines), "--num_processes", str(processes),
                             "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1", "--main_process_port",
                             str(port), "--rdzv_backend", "static", "--same_network", "--mixed_precision", "no",
                             "--dynamo_backend", "no")


def trainer_args(dataset: Path, output_dir: Path, *overrides: str, resume: str | None = None) -> list[str]:
    return [TRAIN_SCRIPT, *(["--resume", resume] if resume else []), f"data.root={dataset}",
            f"output_dir={output_dir}", *TINY, *overrides]


def run(command: list[str], seconds: int = 300, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(bounded(seconds, command), cwd=REPO, capture_output=True, text=True, env=ENV)
    if check:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def train(dataset: Path, output_dir: Path, *overrides: str, processes: int = 1, resume: str | None = None,
          check: bool = True, seconds: int = 300) -> subprocess.CompletedProcess:
    return run([*single_machine(processes), *trainer_args(dataset, output_dir, *overrides, resume=resume)],
               seconds, check)


def logged(output_dir: Path) -> dict[int, dict]:
    """train_log.jsonl by step (a resumed run's lines replace the earlier ones of the same step)."""
    by_step: dict[int, dict] = {}
    path = output_dir / "train_log.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        record = json.loads(line)
        by_step.setdefault(record["step"], {}).update(record)
    return by_step
