"""A lost rank never hangs the others: with distributed.timeout_s=30, the survivor of a 2-machine loopback run exits
non-zero within timeout + 60 s naming the lost rank, the previous checkpoint stays intact and --resume latest
finishes the run. SIGKILL is a crashed process (gloo notices a closed socket); SIGSTOP is a hung one (NCCL-like: only
the timeout can end the wait)."""
import signal
import subprocess
import time

import psutil
import pytest
from distributed_runs import ENV, REPO, TRAIN_SCRIPT, bounded, free_port, logged, machine_of, make_dataset, train, trainer_args

from trainer.checkpointing.checkpoint import step_checkpoint_dir, verify_checkpoint
from trainer.checkpointing.run_dir import find_resume_checkpoint

pytestmark = pytest.mark.slow
TIMEOUT_S = 30
SAME_YAML = ["train.global_batch_size=8", "train.micro_batch_size=4", "train.max_steps=40", "checkpoint.every_steps=2",
             f"distributed.timeout_s={TIMEOUT_S}"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


def trainer_process(launcher: subprocess.Popen) -> psutil.Process:
    """The trainer/train.py process a machine's launcher started (it has exactly one: 1 process per machine)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [child for child in psutil.Process(launcher.pid).children(recursive=True)
                 if TRAIN_SCRIPT in child.cmdline() and "accelerate" not in " ".join(child.cmdline())]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError("machine 1 started no trainer process within 120 s")


def lose_rank_1(dataset, output_dir, signal_number) -> tuple[int, float, str]:
    """Start 2 machines x 1 process, send ``signal_number`` to rank 1 after step 3 (checkpoint 2 written); returns
    the survivor's exit code, seconds from the signal to its exit, and its stderr."""
    port, logs = free_port(), output_dir.parent / f"{output_dir.name}_logs"
    logs.mkdir()
    machines = {}
    for rank in (0, 1):
        with open(logs / f"machine_{rank}.log", "w") as log:
            machines[rank] = subprocess.Popen(
                bounded(300, [*machine_of(2, 2, rank, port), *trainer_args(dataset, output_dir, *SAME_YAML)]),
                cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=log)
    rank_1 = trainer_process(machines[1])
    deadline = time.monotonic() + 240
    while (max(logged(output_dir), default=0) < 3 or find_resume_checkpoint("auto", output_dir) is None) and time.monotonic() < deadline:
        assert machines[0].poll() is None, (logs / "machine_0.log").read_text()[-3000:]
        time.sleep(0.1)
    rank_1.send_signal(signal_number)
    signalled = time.monotonic()
    try:
        code = machines[0].wait(timeout=TIMEOUT_S + 60)
        elapsed = time.monotonic() - signalled
    finally:
        for machine in machines.values():  # never leave a process behind, whatever happened
            if machine.poll() is None:
                for process in psutil.Process(machine.pid).children(recursive=True) + [psutil.Process(machine.pid)]:
                    process.kill()
        if signal_number == signal.SIGSTOP:
            rank_1.kill()
        for machine in machines.values():
            machine.wait(timeout=30)
    return code, elapsed, (logs / "machine_0.log").read_text()


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGSTOP], ids=["crashed", "hung"])
def test_lost_rank_ends_the_survivor_and_the_run_resumes(dataset, tmp_path, signal_number):
    output_dir = tmp_path / "run"
    code, elapsed, survivor_log = lose_rank_1(dataset, output_dir, signal_number)
    assert code != 0 and elapsed <= TIMEOUT_S + 60, (code, elapsed, survivor_log[-3000:])
    assert "lost rank 1" in survivor_log, survivor_log[-3000:]
    latest = find_resume_checkpoint("auto", output_dir)
    assert latest is not None and verify_checkpoint(latest)["step"] >= 2  # intact: sizes and sha256 of every file
    train(dataset, output_dir, *SAME_YAML, processes=2, resume="latest")
    assert verify_checkpoint(step_checkpoint_dir(output_dir, 40))["step"] == 40
