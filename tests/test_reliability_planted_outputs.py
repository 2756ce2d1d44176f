"""Output folders prepared by someone else, and the run lock: each row is a case tried as a hostile user would, and the
test that pins the fix (docs/reliability.md, "Output folders planted by someone else").

| case | input | what happened | what happens now | test |
|---|---|---|---|---|
| link | `config.yaml`, `run_summary.json`, `trainer_state.json`, a model card, results, `vocab.json`, a benchmark's results file planted as a symlink (or hard link) to a file elsewhere | the file elsewhere was overwritten | every whole-file writer writes a fresh temporary and renames it over the name (`data_pipelines.safe_write.write_file`): the link is replaced, its target untouched | `test_whole_file_writers_replace_a_planted_link_never_its_target` |
| lock link | `.lock` a symlink to a file elsewhere, or a dangling one | the lock record truncated the target; a dangling link created it | refused, one line naming `.lock` and where it leads; nothing created or changed | `test_a_planted_lock_link_is_refused_and_its_target_untouched` |
| log link | `train_log.jsonl` a symlink or a hard link | lines were appended to the file elsewhere | refused, one line naming it (appends open with `O_NOFOLLOW` and need one link) | `test_appends_refuse_a_planted_link` |
| export | `--out` holding an older export whose `README.md`, `encoder.onnx` or `vocab.json` is a symlink | written through the link | replaced (`replaced_on_success` for writers that take a path: ONNX, figures, gallery images) | `test_whole_file_writers_replace_a_planted_link_never_its_target`, `test_path_writers_replace_a_planted_link` |
| lock race | the holder SIGKILLed while a child it forked or spawned still runs | the child kept the `flock` (an at-fork handler had to drop it, and a child killed before running it did not) | a POSIX record lock (`fcntl.lockf`) belongs to the process: a child never holds it, so the kernel frees it with the holder | `test_a_child_holding_the_lock_descriptor_does_not_keep_the_lock` |
| lock in-process | a second `acquire` in the holding process | (record locks would let it through, and reading `.lock` would drop the lock) | refused from memory, naming the holder | `test_a_second_acquire_in_the_holding_process_is_refused` |
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO

from benchmarks.common import write_result
from data_pipelines.vocab import Vocabulary
from trainer.checkpointing.run_dir import OutputDirError, claim_output_dir
from trainer.checkpointing.run_lock import LOCK_FILE, RunDirInUse, RunLock
from trainer.config.schema import TrainConfig
from trainer.inference.model_card import card_facts, write_export_card
from trainer.training.run_log import RunLog
from trainer.training.stage_end import write_summary

SECRET = "precious victim content\n"


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "victim.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text(SECRET)
    return path


def plant(out: Path, name: str, target: Path, kind: str = "symlink") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    link = out / name
    (os.symlink if kind == "symlink" else os.link)(target, link)
    return link


WRITERS = {
    "config.yaml": lambda out, ckpt: TrainConfig().save(out / "config.yaml"),
    "run_summary.json": lambda out, ckpt: write_summary(out, {"stopped": "max_steps"}),
    "README.md": lambda out, ckpt: write_export_card(out, card_facts(ckpt, None, None, None, None)),
    "vocab.json": lambda out, ckpt: Vocabulary.load(ckpt / "vocab.json").save(out / "vocab.json"),
    "results_test.json": lambda out, ckpt: safe_write().write_file(out / "results_test.json", "[]\n"),
    "bench.json": lambda out, ckpt: write_result({"samples_per_s": 1.0}, out / "bench.json"),
}


def safe_write():
    """The module under test (imported here, so that each test of this file fails on its own without it)."""
    from data_pipelines import safe_write

    return safe_write


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_whole_file_writers_replace_a_planted_link_never_its_target(tiny_checkpoint, tmp_path, name, kind):
    target = victim(tmp_path)
    link = plant(tmp_path / "out", name, target, kind)
    WRITERS[name](tmp_path / "out", tiny_checkpoint[0])
    assert target.read_text() == SECRET
    assert not link.is_symlink() and link.stat().st_ino != target.stat().st_ino and link.read_text() != SECRET
    assert sorted(path.name for path in link.parent.iterdir()) == [name]  # no temporary left behind


@pytest.mark.parametrize("suffix", [".onnx", ".png", ".jpg"])
def test_path_writers_replace_a_planted_link(tmp_path, suffix):
    target = victim(tmp_path)
    link = plant(tmp_path / "out", f"graph{suffix}", target)
    with safe_write().replaced_on_success(link) as temporary:
        temporary.write_bytes(b"new")
    assert target.read_text() == SECRET and link.read_bytes() == b"new" and not link.is_symlink()
    with pytest.raises(RuntimeError), safe_write().replaced_on_success(link) as temporary:  # a failed writer changes nothing
        temporary.write_bytes(b"half")
        raise RuntimeError("export failed")
    assert link.read_bytes() == b"new" and sorted(p.name for p in link.parent.iterdir()) == [link.name]


@pytest.mark.parametrize("dangling", [False, True])
def test_a_planted_lock_link_is_refused_and_its_target_untouched(tmp_path, dangling):
    target = tmp_path / "elsewhere" / "created-by-lock" if dangling else victim(tmp_path)
    target.parent.mkdir(exist_ok=True)
    plant(tmp_path / "run", LOCK_FILE, target)
    with pytest.raises(OutputDirError) as refused:
        claim_output_dir(tmp_path / "run", None, False, {})
    message = str(refused.value)
    assert f"{tmp_path / 'run' / LOCK_FILE} is a symbolic link (to {target})" in message and "\n" not in message
    assert (not target.exists()) if dangling else target.read_text() == SECRET


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_appends_refuse_a_planted_link(tmp_path, kind):
    target = victim(tmp_path)
    link = plant(tmp_path / "run", "train_log.jsonl", target, kind)
    log = RunLog(SimpleNamespace(log=lambda values, step: None, is_main_process=True), tmp_path / "run")
    with pytest.raises(OSError, match=f"^{link} is a (symbolic|hard) link .*refusing to write through it"):
        log.scalars({"train/loss": 1.0}, step=1)
    assert target.read_text() == SECRET


SPAWNING_HOLDER = """
import subprocess, sys, time
from trainer.checkpointing.run_lock import RunLock
lock = RunLock.acquire(sys.argv[1])
lock.record(run_id="holder-run")
# a child given the descriptor (as a forked child that has run nothing yet has it): it must not keep the lock
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=[lock.fd])
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_child_holding_the_lock_descriptor_does_not_keep_the_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", SPAWNING_HOLDER, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                              start_new_session=True)
    try:
        child = int(holder.stdout.readline())
        with pytest.raises(RunDirInUse, match=f"pid {holder.pid} on host"):
            RunLock.acquire(tmp_path)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        os.kill(child, 0)  # the child still runs, holding a copy of the descriptor ...
        lock = RunLock.acquire(tmp_path)  # ... yet the lock is free
        assert lock.holder["pid"] == os.getpid()
        lock.release()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)


def test_a_second_acquire_in_the_holding_process_is_refused(tmp_path):
    lock = RunLock.acquire(tmp_path)
    lock.record(run_id="mine")
    with pytest.raises(RunDirInUse, match=f"pid {os.getpid()} on host .*run mine"):
        RunLock.acquire(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import sys; from trainer.checkpointing.run_lock import RunLock; "
                            "RunLock.acquire(sys.argv[1])", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "RunDirInUse" in probe.stderr  # the refused attempt did not drop this process's lock
    lock.release()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["run_id"] == "mine"
    RunLock.acquire(tmp_path).release()
