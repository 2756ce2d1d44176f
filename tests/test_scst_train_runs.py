"""SCST end to end through `trainer/train.py` subprocesses on a tiny synthetic dataset: a stage started from an XE
checkpoint resumes bit-exactly (N straight == N/2 + --resume + N/2) and runs as 2 CPU DDP processes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_trainer_train import logged, prepare_synthetic

from trainer.checkpointing.checkpoint import step_checkpoint_dir, verify_checkpoint
from trainer.scst.df_cache import CACHE_NAME

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TINY = ["model.encoder_weights=none", "model.feature_dim=16", "model.embed_dim=16", "model.attention_dim=16",
        "model.hidden_dim=32", "model.dropout=0.3", "data.image_size=32", "train.global_batch_size=4",
        "eval.batch_size=8", "eval.max_len=8", "eval.every_steps=0", "logging.every_steps=1", "data.num_workers=1"]
SCST = ["train.objective=scst", "scst.samples=3", "scst.max_len=8", "scst.entropy_weight=0.01", "optim.lr=1e-3",
        "teacher_forcing.schedule=linear", "teacher_forcing.decay=0.1"]
SCST_TAGS = ("train/loss", "train/policy_loss", "train/attention_reg", "train/reward", "train/baseline",
             "train/advantage_std", "train/sample_len", "train/entropy", "train/grad_norm", "train/lr")

pytestmark = pytest.mark.slow


def train(dataset: Path, output_dir: Path, *overrides: str, resume: str | None = None,
          launcher: list | None = None) -> subprocess.CompletedProcess:
    command = [*(launcher or [PYTHON]), str(REPO / "trainer" / "train.py"), *(["--resume", resume] if resume else []),
               f"data.root={dataset}", f"output_dir={output_dir}", *TINY, *overrides]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def dataset_and_xe(tmp_path_factory) -> tuple[Path, Path]:
    """38 train / 5 val images in 8 shards, and the best checkpoint of a 4-step cross-entropy run on them."""
    root = tmp_path_factory.mktemp("scst_data")
    prepare_synthetic(root)
    train(root / "prep", root / "xe", "train.max_steps=4")
    return root / "prep", root / "xe" / "best"


def test_scst_resume_is_bit_exact(dataset_and_xe, tmp_path):
    dataset, xe_best = dataset_and_xe
    common = [*SCST, f"train.init_from={xe_best}", "train.max_steps=6", "train.global_batch_size=8",
              "train.micro_batch_size=4", "checkpoint.every_steps=3", "eval.every_steps=3"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    result = train(dataset, straight, *common)
    assert "ignoring teacher_forcing (schedule linear" in result.stderr and (dataset / CACHE_NAME).is_file()
    train(dataset, resumed, *common, "train.stop_at_step=3")
    train(dataset, resumed, *common, resume="latest")
    for name in ("model.safetensors", "optimizer.safetensors"):
        assert (step_checkpoint_dir(straight, 6) / name).read_bytes() == \
               (step_checkpoint_dir(resumed, 6) / name).read_bytes(), name
    straight_log, resumed_log = logged(straight), logged(resumed)
    for step in (4, 5, 6):
        for tag in SCST_TAGS:
            assert straight_log[step][tag] == resumed_log[step][tag], (step, tag)
    assert "val/CIDEr" in straight_log[0] and "val/CIDEr" in straight_log[6]  # the start is validated too
    assert not [p for p in straight.rglob("*") if p.suffix in (".bin", ".pt", ".pkl")]


def test_scst_two_process_ddp(dataset_and_xe, tmp_path):
    dataset, xe_best = dataset_and_xe
    launcher = [str(Path(PYTHON).parent / "accelerate"), "launch", "--config_file",
                str(REPO / "launch" / "cpu_2proc.yaml"), "--main_process_port", "29547"]
    result = train(dataset, tmp_path, *SCST, "scst.baseline=greedy", f"train.init_from={xe_best}",
                   "train.global_batch_size=8", "train.max_steps=4", "checkpoint.every_steps=4", launcher=launcher)
    assert "world size 2 (DistributedType.MULTI_CPU)" in result.stderr
    state = verify_checkpoint(step_checkpoint_dir(tmp_path, 4))
    assert state["world_size"] == 2 and len(set(state["rank_weight_digests"])) == 1  # gradients were synchronised
    assert state["rng"][0]["torch"] != state["rng"][1]["torch"]  # each rank sampled its own captions
    assert all(tag in logged(tmp_path)[4] for tag in SCST_TAGS)
