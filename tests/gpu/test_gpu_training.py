"""Training on a CUDA device through the CLI: fp16 (GradScaler through Accelerate) and bf16 steps, a 1-process NCCL
group, and exact-enough checkpoint resume. Unverified here: written on a machine without a GPU."""
import math

import pytest
import torch
from distributed_runs import PYTHON, free_port, logged, make_dataset, run, train, trainer_args
from safetensors.torch import load_file

from trainer.checkpointing.checkpoint import step_checkpoint_dir, verify_checkpoint

pytestmark = pytest.mark.gpu
STEPS = ["train.global_batch_size=4", "checkpoint.every_steps=2"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def fp32_run(dataset, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("fp32")
    result = train(dataset, output_dir, *STEPS, "train.max_steps=2", "mixed_precision=no")
    assert "device cuda" in result.stderr
    return output_dir


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_training_steps(dataset, fp32_run, tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.fail("this GPU has no bf16 support: run the fp16 case only (-k fp16)")
    result = train(dataset, tmp_path, *STEPS, "train.max_steps=2", f"mixed_precision={precision}")
    assert "device cuda" in result.stderr
    losses = [logged(tmp_path)[step]["train/loss"] for step in (1, 2)]
    assert all(math.isfinite(loss) for loss in losses)
    # step 1 sees the same initial weights and batch as the fp32 run: autocast changes the loss only slightly
    assert losses[0] == pytest.approx(logged(fp32_run)[1]["train/loss"], rel=2e-2)
    state = verify_checkpoint(step_checkpoint_dir(tmp_path, 2))
    if precision == "fp16":  # Accelerate's GradScaler state is checkpointed
        assert state["grad_scaler"] is not None and state["grad_scaler"]["scale"] > 0
    else:
        assert state["grad_scaler"] is None
    weights = load_file(str(step_checkpoint_dir(tmp_path, 2) / "model.safetensors"))
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}  # autocast keeps fp32 master weights


def test_one_process_nccl_group(dataset, tmp_path):
    command = [PYTHON, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", str(free_port()),
               *trainer_args(dataset, tmp_path, *STEPS, "train.max_steps=2")]
    result = run(command)
    assert "world size 1 (DistributedType.MULTI_GPU)" in result.stderr
    state = verify_checkpoint(step_checkpoint_dir(tmp_path, 2))
    assert state["world_size"] == 1 and "cuda" in state["rng"][0]


def test_resume_on_gpu_continues_the_run(dataset, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = [*STEPS, "train.max_steps=4", "model.dropout=0.0"]
    train(dataset, straight, *common)
    train(dataset, resumed, *common, "train.stop_at_step=2")
    train(dataset, resumed, *common, resume="latest")
    assert verify_checkpoint(step_checkpoint_dir(resumed, 4))["step"] == 4
    for step in (3, 4):  # GPU kernels (atomics) need not be bit-reproducible: compare within a tolerance
        assert logged(resumed)[step]["train/loss"] == pytest.approx(logged(straight)[step]["train/loss"], abs=1e-4)
    straight_weights = load_file(str(step_checkpoint_dir(straight, 4) / "model.safetensors"))
    resumed_weights = load_file(str(step_checkpoint_dir(resumed, 4) / "model.safetensors"))
    assert straight_weights.keys() == resumed_weights.keys()
    for name, tensor in straight_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, atol=1e-5, rtol=1e-4, msg=name)
