"""Issue 22, runs / checkpoints / output folders: each row is a case tried as a hostile or careless user would, and the
test that pins the fix (docs/runs-and-checkpoints.md).

| case | what went wrong | what happens now | test |
|---|---|---|---|
| R8 | two trainings into one `output_dir`: one died mid-checkpoint, the train log interleaved | the main process holds a POSIX record lock (`lockf`) on `output_dir/.lock` for the run's life; a second run is refused naming pid, host, start and run id; SIGKILL releases it (children never hold a record lock); other ranks never take it | `test_a_second_run_is_refused_naming_the_holder_and_sigkill_frees_the_lock`, `test_train_refuses_a_locked_output_dir_before_training`, `test_only_the_main_process_takes_the_lock` |
| R11 | `--resume A/checkpoints/step_2` with `output_dir` = run B overwrote and pruned B's checkpoints, cut and mixed its log | refused, naming both run ids; into an empty folder it is allowed (the run continues there, same run id) | `test_resume_into_another_runs_folder_is_refused_but_an_empty_folder_is_fine` |
| R12 | `--resume auto` finding no step checkpoint started fresh over `best/` and `train_log.jsonl` | the fresh-start rules apply: refused, or moved aside with `--overwrite` | `test_resume_auto_without_checkpoint_applies_the_fresh_start_rules` |
| R15 | a training whose `output_dir` is the parent of a running `prepare --out` deleted prepare's live `.partial` folder | staging names carry pid and host (`.NAME.partial-PID-HOST`); only a dead writer's are removed (another host's: after 24 h untouched); a moved-aside old version whose target is missing is put back | `test_only_staging_of_a_dead_writer_is_removed` |
| C8b | `features --overwrite` / `prepare --overwrite` into an unrelated folder deleted its files | `--overwrite` replaces only an empty folder or an output of the same kind (`manifest.json` `format`) | `test_overwrite_replaces_only_an_output_of_the_same_kind` |
| R13 | training `output_dir` = parent of `data.root` with `--overwrite` moved the dataset aside | refused: `output_dir` is or contains an input (`data.root`, `data.features`, `train.init_from`) | `test_overwrite_never_moves_aside_a_folder_holding_an_input` |
| R14 | `output_dir=` (empty) wrote into the working directory | refused with a one-line error | `test_empty_output_dir_is_refused` |
| dirs | `output_dir` under a file, or read-only: tracebacks | one-line errors at set-up, before training | `test_output_dir_under_a_file_or_not_writable_is_a_one_line_error` |
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO
from test_data_prepare import make_images, write_karpathy
from test_reliability_trainer import last_line, train
from test_reliability_trust_checkpoints import stub_checkpoint

from data_pipelines import prepare
from data_pipelines.atomic_dir import FOREIGN_STALE_AFTER_S, remove_stale_staging, staging_dir, this_host
from data_pipelines.features import extract_features
from trainer.checkpointing.checkpoint import STATE_FILE, CheckpointError, step_checkpoint_dir
from trainer.checkpointing.run_dir import (
    OutputDirError,
    check_fresh_start,
    check_output_dir_name,
    claim_output_dir,
    make_output_dir,
)
from trainer.checkpointing.run_lock import LOCK_FILE, RunDirInUse, RunLock
from trainer.train import main as train_main
from trainer.training.run_setup import claim_on_main_process

HOLDER = """
import os, sys, time
from trainer.checkpointing.run_lock import RunLock
lock = RunLock.acquire(sys.argv[1])
lock.record(run_id="holder-run")
if os.fork() == 0:  # a loader worker that outlives its parent must not keep the lock
    time.sleep(60)
    os._exit(0)
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_run_is_refused_naming_the_holder_and_sigkill_frees_the_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirInUse) as refused:
            claim_output_dir(tmp_path, None, False, {})
        message = str(refused.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in message and "run holder-run" in message
        assert "started 20" in message and "\n" not in message
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        lock = RunLock.acquire(tmp_path)  # the forked child still runs, yet the lock is free
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
        lock.release()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)


def test_train_refuses_a_locked_output_dir_before_training(tiny_prepared, tmp_path):
    lock = RunLock.acquire(make_output_dir(tmp_path / "run"))
    try:
        refused = train(tiny_prepared, tmp_path / "run", "train.max_steps=1")
    finally:
        lock.release()
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "is in use by another run" in last_line(refused) and f"pid {os.getpid()}" in last_line(refused)
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [LOCK_FILE]  # nothing written


def test_only_the_main_process_takes_the_lock(tmp_path):
    lock = RunLock.acquire(tmp_path)
    config = SimpleNamespace(output_dir=str(tmp_path), data=SimpleNamespace(root="d", features=None, vocab=None, sources=[]),
                             train=SimpleNamespace(init_from=None))
    args = SimpleNamespace(resume=None, overwrite=False)
    other_rank = SimpleNamespace(is_main_process=False, num_processes=1)
    assert claim_on_main_process(other_rank, config, args.resume, args.overwrite) == (None, None)
    with pytest.raises(CheckpointError, match="in use by another run"):
        claim_on_main_process(SimpleNamespace(is_main_process=True, num_processes=1), config, args.resume,
                              args.overwrite)
    lock.release()


def test_resume_into_another_runs_folder_is_refused_but_an_empty_folder_is_fine(tmp_path):
    theirs = stub_checkpoint(step_checkpoint_dir(tmp_path / "a", 2), run_id="run-a")
    stub_checkpoint(step_checkpoint_dir(tmp_path / "b", 6), run_id="run-b")
    before = sorted(path.name for path in (tmp_path / "b").rglob("*"))
    with pytest.raises(CheckpointError) as refused:
        claim_output_dir(tmp_path / "b", str(theirs), False, {})
    assert "'run-a'" in str(refused.value) and "'run-b'" in str(refused.value)
    assert sorted(path.name for path in (tmp_path / "b").rglob("*")) == sorted([*before, LOCK_FILE])
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "train_log.jsonl").write_text('{"step": 1}\n')  # a run whose id nothing records
    with pytest.raises(CheckpointError, match="a run of unknown id"):
        claim_output_dir(tmp_path / "c", str(theirs), False, {})
    for allowed in (tmp_path / "empty", tmp_path / "a"):  # continuing elsewhere; its own folder
        lock, checkpoint = claim_output_dir(allowed, str(theirs), False, {})
        assert checkpoint == theirs
        lock.release()


def test_resume_auto_without_checkpoint_applies_the_fresh_start_rules(tmp_path):
    run = tmp_path / "run"
    stub_checkpoint(run / "best", run_id="killed-run")
    (run / "train_log.jsonl").write_text('{"step": 1, "train/loss": 2.0}\n')
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    with pytest.raises(CheckpointError, match="already holds a run"):
        claim_output_dir(run, "auto", False, {})
    assert all(path.read_bytes() == payload for path, payload in before.items())
    lock, checkpoint = claim_output_dir(run, "auto", True, {})
    assert checkpoint is None and not (run / "best").exists()
    moved = [path for path in tmp_path.iterdir() if path.name.startswith("run.replaced-")]
    assert len(moved) == 1 and (moved[0] / "best" / STATE_FILE).is_file()
    with pytest.raises(RunDirInUse):  # the lock moved on to the new, empty output_dir
        RunLock.acquire(run)
    lock.release()


def test_only_staging_of_a_dead_writer_is_removed(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, host = int(finished.stdout), this_host()
    live = tmp_path / f".prepared.partial-{sleeper.pid}-{host}"
    gone = tmp_path / f".step_00000002.partial-{dead}-{host}"
    legacy = tmp_path / f".best.partial-{dead}"  # named by older code: pid only, this host
    foreign_fresh, foreign_old = tmp_path / ".a.partial-1-elsewhere", tmp_path / ".b.partial-1-elsewhere"
    mine = staging_dir(tmp_path / "mine")
    restored = tmp_path / f".best.old-{dead}-{host}"  # killed between install_dir's two renames
    for folder in (live, gone, legacy, foreign_fresh, foreign_old, restored):
        folder.mkdir()
    (restored / "trainer_state.json").write_text("{}")
    old_time = time.time() - FOREIGN_STALE_AFTER_S - 60
    os.utime(foreign_old, (old_time, old_time))
    try:
        remove_stale_staging(tmp_path)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [live.name, foreign_fresh.name, mine.name, "best"])
    assert (tmp_path / "best" / "trainer_state.json").is_file()


def test_overwrite_replaces_only_an_output_of_the_same_kind(tiny_prepared, tmp_path):
    unrelated = tmp_path / "mine"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="is not a feature cache .*no manifest.json"):
        extract_features(tiny_prepared, unrelated, "none", 32, overwrite=True, show_progress=False)
    dataset_like = tmp_path / "copy"  # another kind of output: a prepared dataset's manifest
    dataset_like.mkdir()
    (dataset_like / "manifest.json").write_bytes((tiny_prepared / "manifest.json").read_bytes())
    with pytest.raises(ValueError, match="is not a feature cache .*'showattend-shards'"):
        extract_features(tiny_prepared, dataset_like, "none", 32, overwrite=True, show_progress=False)
    make_images(tmp_path / "src")
    source = ["karpathy", "--json", write_karpathy(tmp_path / "src"), "--image-size", 32, "--min-word-freq", 1,
              "--workers", 1]
    with pytest.raises(ValueError, match="is not a prepared dataset"):
        prepare.run([*source, "--out", unrelated, "--overwrite"])
    (a_file := tmp_path / "file.txt").write_text("mine too")
    with pytest.raises(ValueError, match="is a file, not a prepared dataset"):
        prepare.run([*source, "--out", a_file, "--overwrite"])
    assert (unrelated / "notes.txt").read_text() == "keep me" and a_file.read_text() == "mine too"
    prepare.run([*source, "--out", tmp_path / "out"])
    replaced = prepare.run([*source, "--out", tmp_path / "out", "--overwrite", "--shard-size", 2])
    assert replaced["shard_size"] == 2  # a prepared dataset is still replaced


def test_overwrite_never_moves_aside_a_folder_holding_an_input(tmp_path):
    parent = tmp_path / "project"
    (parent / "data").mkdir(parents=True)
    (parent / "data" / "manifest.json").write_text("{}")
    (parent / "train_log.jsonl").write_text('{"step": 1}\n')
    for key, given in (("data.root", parent / "data"), ("data.features", parent)):
        with pytest.raises(OutputDirError, match=f"the input {key}="):
            check_fresh_start(parent, True, {"data.root": None, key: given})
    assert (parent / "data" / "manifest.json").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_empty_output_dir_is_refused():
    with pytest.raises(OutputDirError, match="'output_dir' is empty"):
        check_output_dir_name("  ")
    with pytest.raises(SystemExit) as exit_info:  # before the accelerator, the data or any folder
        train_main(["data.root=/nowhere", "output_dir="])
    assert str(exit_info.value).startswith("error: config key 'output_dir' is empty")


def test_output_dir_under_a_file_or_not_writable_is_a_one_line_error(tiny_prepared, tmp_path, monkeypatch):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputDirError, match="is a file; choose a folder"):
        make_output_dir(a_file)
    result = train(tiny_prepared, a_file / "run", "train.max_steps=1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert last_line(result) == f"error: output_dir {a_file / 'run'} is under {a_file}, which is a file; choose a folder"

    def read_only(self, *args, **kwargs):  # tests run as root, for whom chmod does not stop writes
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "touch", read_only)
    with pytest.raises(OutputDirError, match=r"cannot be written \(Permission denied\); choose a writable folder"):
        make_output_dir(tmp_path / "read-only")
