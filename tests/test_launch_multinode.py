"""launch/loopback_multinode.sh: 2 "machines" x 1 process on this host train byte-for-byte like one machine with
2 processes (same config, CPU, gloo)."""
import os
import subprocess

import pytest
from distributed_runs import ENV, PYTHON, REPO, bounded, free_port, make_dataset, train, trainer_args

from trainer.checkpointing.checkpoint import step_checkpoint_dir, verify_checkpoint

pytestmark = pytest.mark.slow
STEPS = ["train.max_steps=4", "checkpoint.every_steps=4", "train.global_batch_size=8", "train.micro_batch_size=4"]


def test_loopback_two_machines_match_one_machine_two_processes(tmp_path):
    dataset = make_dataset(tmp_path / "data")
    loopback, single = tmp_path / "loopback", tmp_path / "single"
    command = ["bash", str(REPO / "launch" / "loopback_multinode.sh"), "2", "1",
               *trainer_args(dataset, loopback, *STEPS)[1:]]  # the script names trainer/train.py itself
    env = {**ENV, "PYTHON": PYTHON, "MAIN_PROCESS_PORT": str(free_port()), "LOOPBACK_TIMEOUT_S": "240",
           "LOOPBACK_LOG_DIR": str(tmp_path / "machine_logs")}
    result = subprocess.run(bounded(300, command), cwd=REPO, env=env, capture_output=True, text=True)
    machine_1_log = (tmp_path / "machine_logs" / "machine_1.log")
    assert result.returncode == 0, result.stderr[-3000:] + (machine_1_log.read_text()[-2000:]
                                                            if machine_1_log.exists() else "")
    assert "world size 2 (DistributedType.MULTI_CPU)" in result.stderr
    train(dataset, single, *STEPS, processes=2)

    loopback_state = verify_checkpoint(step_checkpoint_dir(loopback, 4))
    single_state = verify_checkpoint(step_checkpoint_dir(single, 4))
    assert loopback_state["world_size"] == single_state["world_size"] == 2
    assert len(set(loopback_state["rank_weight_digests"])) == 1  # the two machines' ranks agree
    for name in ("model.safetensors", "optimizer.safetensors"):
        assert (step_checkpoint_dir(loopback, 4) / name).read_bytes() == \
               (step_checkpoint_dir(single, 4) / name).read_bytes(), name


def test_loopback_script_rejects_bad_arguments():
    result = subprocess.run(bounded(30, ["bash", str(REPO / "launch" / "loopback_multinode.sh"), "two", "1"]),
                            cwd=REPO, capture_output=True, text=True, env={**os.environ})
    assert result.returncode == 2 and "MACHINES PROCS_PER_MACHINE" in result.stderr
