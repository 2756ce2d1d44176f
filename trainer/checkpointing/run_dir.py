"""Which run an ``output_dir`` holds, and what starting a run in it may do.

- The main process holds ``output_dir/.lock`` for the run's life (``trainer.checkpointing.run_lock``): a second run there is refused.
- No ``--resume``, or ``--resume auto`` finding no step checkpoint: the folder must hold no run (step checkpoints,
  ``best/``, ``train_log.jsonl``); ``--overwrite`` moves an existing one aside to ``OUTPUT_DIR.replaced-TIMESTAMP``
  (nothing is deleted), unless the folder is or holds an input of the run (``data.root``, ``data.features``,
  ``train.init_from``).
- ``--resume latest``: the newest intact step checkpoint (each corrupt newer one is skipped with a WARNING); an error
  when there is none or all are corrupt. ``--resume auto``: the same when a step checkpoint exists.
- ``--resume CKPT_DIR``: that checkpoint, into an ``output_dir`` that holds no run or holds the checkpoint's own run
  (same ``run_id``); a folder of another run is refused. Continuing a checkpoint in an empty folder elsewhere keeps its
  run id (same lineage); a new stage from another run's weights is ``train.init_from``.
Every run has a ``run_id`` (kept across resumes); ``best/`` belongs to the run whose id it records.
"""
from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path

from data_pipelines.atomic_dir import staging_path
from data_pipelines.safe_write import write_file
from trainer.checkpointing.checkpoint import STATE_FILE, CheckpointError, list_step_checkpoints, verify_checkpoint
from trainer.checkpointing.run_lock import LOCK_FILE, RunLock
from trainer.config.yaml_file import load_yaml_file
from trainer.training.run_log import LOG_FILE

logger = logging.getLogger(__name__)
RESUME_CHOICES = ("latest", "auto")
BEST_DIR = "best"
CONFIG_FILE = "config.yaml"
RUN_CONFIG_SECTIONS = {"output_dir", "data", "model", "train"}


class OutputDirError(ValueError):
    """``output_dir`` cannot hold a run: empty, a file, under a file, not writable, or it holds an input."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def check_output_dir_name(output_dir: str) -> None:
    """An empty ``output_dir`` would write into the working directory: refused (``.`` says so explicitly)."""
    if not str(output_dir).strip():
        raise OutputDirError("config key 'output_dir' is empty (it would write into the working directory); give a "
                             "folder, e.g. output_dir=runs/NAME (or output_dir=. to mean this directory)")


def make_output_dir(output_dir: str | Path) -> Path:
    """Create ``output_dir`` (and its parents); OutputDirError when it is a file, under a file or not writable."""
    output_dir = Path(output_dir)
    blocking = next((path for path in (output_dir, *output_dir.parents) if path.exists()), None)
    if blocking is not None and not blocking.is_dir():
        where = "is a file" if blocking == output_dir else f"is under {blocking}, which is a file"
        raise OutputDirError(f"output_dir {output_dir} {where}; choose a folder")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = staging_path(output_dir / "write-test")
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise OutputDirError(f"output_dir {output_dir} cannot be written ({error.strerror or error}); choose a "
                             f"writable folder") from None
    return output_dir


def run_artefacts(output_dir: str | Path) -> list[Path]:
    """What a previous run left in ``output_dir``: step checkpoints, ``best/``, ``train_log.jsonl``."""
    output_dir = Path(output_dir)
    found = list_step_checkpoints(output_dir)[-1:]
    found += [path for path in (output_dir / BEST_DIR, output_dir / LOG_FILE) if path.exists()]
    return found


def move_aside(output_dir: str | Path) -> Path:
    """Rename ``output_dir`` to a sibling ``NAME.replaced-YYYYmmdd-HHMMSS`` and return the new path."""
    output_dir = Path(output_dir)
    target = output_dir.with_name(f"{output_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
    suffix = 1
    while target.exists():
        target, suffix = target.with_name(f"{target.name}-{suffix}"), suffix + 1
    os.replace(output_dir, target)
    return target


def check_holds_no_input(output_dir: str | Path, inputs: dict[str, str | Path | None]) -> None:
    """OutputDirError when ``output_dir`` is or contains one of ``inputs`` (config key -> path; None: unset)."""
    target = Path(os.path.realpath(output_dir))
    for key, given in inputs.items():
        if not given:
            continue
        path = Path(os.path.realpath(given))
        if target == path or target in path.parents:
            raise OutputDirError(f"output_dir {output_dir} {'is' if target == path else 'contains'} the input "
                                 f"{key}={given}; --overwrite would move it aside with the old run. Choose an "
                                 f"output_dir that holds no input")


def check_holds_a_run(output_dir: str | Path, artefacts: list[Path]) -> None:
    """OutputDirError unless ``output_dir`` shows it holds a run of this trainer (a checkpoint recording a run id,
    or the ``config.yaml`` a run writes first): ``--overwrite`` moves only runs, not any folder with a log in it."""
    if run_ids_in(output_dir):
        return
    try:
        config = load_yaml_file(Path(output_dir) / CONFIG_FILE)
    except (OSError, ValueError):
        config = None
    if isinstance(config, dict) and RUN_CONFIG_SECTIONS <= config.keys():
        return
    names = ", ".join(str(path) for path in artefacts)
    raise OutputDirError(f"output_dir {output_dir} holds {names} but no checkpoint or {CONFIG_FILE} of a run of this "
                         f"trainer; --overwrite moves only runs aside. Move it yourself or choose another output_dir")


def check_fresh_start(output_dir: str | Path, overwrite: bool,
                      inputs: dict[str, str | Path | None] | None = None) -> Path | None:
    """Refuse to start a new run over an old one; with ``overwrite`` move the old one aside (returns where), never
    a folder that is or holds one of ``inputs``."""
    artefacts = run_artefacts(output_dir)
    if not artefacts:
        return None
    if overwrite:
        check_holds_no_input(output_dir, inputs or {})
        check_holds_a_run(output_dir, artefacts)
        return move_aside(output_dir)
    names = ", ".join(str(path) for path in artefacts)
    raise CheckpointError(f"output_dir {output_dir} already holds a run ({names}); continue it with --resume latest, "
                          f"or pass --overwrite to move it aside, or choose another output_dir")


def run_ids_in(output_dir: str | Path) -> dict[Path, str]:
    """The run id each readable ``trainer_state.json`` of ``output_dir`` (step checkpoints, ``best/``) records."""
    ids = {}
    for directory in (*list_step_checkpoints(output_dir), Path(output_dir) / BEST_DIR):
        try:
            state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(state, dict):
            ids[directory] = str(state.get("run_id", ""))  # "": written before runs had ids
    return ids


def check_resume_into(checkpoint: str | Path, output_dir: str | Path) -> None:
    """Refuse ``--resume CHECKPOINT`` into an ``output_dir`` that holds another run (or one whose id is unknown)."""
    artefacts = run_artefacts(output_dir)
    if not artefacts:
        return  # continuing the run in a new folder
    resumed = str(verify_checkpoint(checkpoint).get("run_id", ""))
    held = run_ids_in(output_dir)
    others = sorted({run_id for run_id in held.values() if run_id != resumed})
    if held and not others:
        return
    holder = (f"run {others[0]!r}" if others else
              f"a run of unknown id ({', '.join(str(path) for path in artefacts)})")
    raise CheckpointError(f"--resume {checkpoint}: the checkpoint is of run {resumed!r}, but output_dir {output_dir} "
                          f"holds {holder}; resuming would overwrite, prune and mix that run. Resume into the "
                          f"checkpoint's own output_dir or an empty one")


def lock_output_dir(output_dir: str | Path) -> RunLock:
    """Create ``output_dir`` and take its run lock (RunDirInUse naming the holder; OutputDirError for other failures)."""
    try:
        return RunLock.acquire(make_output_dir(output_dir))
    except OSError as error:  # RunDirInUse is not one
        raise OutputDirError(f"output_dir {output_dir}: cannot open its lock file {LOCK_FILE} "
                             f"({error.strerror or error})") from None


def claim_output_dir(output_dir: str | Path, resume: str | None, overwrite: bool,
                     inputs: dict[str, str | Path | None]) -> tuple[RunLock, Path | None]:
    """Main process, before anything is written: create and lock ``output_dir``, then decide where the run starts.
    Returns the held lock and the checkpoint to resume (None: a fresh start, the fresh-start rules applied)."""
    lock = lock_output_dir(output_dir)
    try:
        checkpoint = find_resume_checkpoint(resume, output_dir) if resume else None
        if checkpoint is not None:
            check_resume_into(checkpoint, output_dir)
            return lock, checkpoint
        if resume:
            logger.info("--resume %s: no checkpoint under %s, starting fresh", resume, output_dir)
        moved = check_fresh_start(output_dir, overwrite, inputs)
        if moved is not None:
            logger.warning("--overwrite: the run that was in %s is now in %s (nothing was deleted)", output_dir, moved)
            old, lock = lock, lock_output_dir(output_dir)
            old.release()
    except BaseException:
        lock.release()
        raise
    return lock, None


def find_resume_checkpoint(spec: str, output_dir: str | Path) -> Path | None:
    """The checkpoint ``--resume SPEC`` continues from; None means a fresh start (``auto`` without checkpoints)."""
    if spec not in RESUME_CHOICES:
        verify_checkpoint(spec)
        return Path(spec)
    candidates = list_step_checkpoints(output_dir)
    problems = []
    for candidate in reversed(candidates):
        try:
            verify_checkpoint(candidate)
            return candidate
        except CheckpointError as error:
            logger.warning("--resume %s: skipping checkpoint %s: %s", spec, candidate, error)
            problems.append(str(error))
    if candidates:
        raise CheckpointError(f"--resume {spec}: all {len(candidates)} checkpoint(s) under {output_dir} are corrupt or "
                              f"incomplete (newest: {problems[0]}); resume from a copy with --resume CKPT_DIR or "
                              f"start again with --overwrite")
    if spec == "auto":
        return None
    raise CheckpointError(f"--resume latest: no checkpoint under {Path(output_dir) / 'checkpoints'}; start without "
                          f"--resume (or use --resume auto, which starts fresh when there is nothing to resume)")


def best_of_run(output_dir: str | Path, run_id: str) -> dict | None:
    """``trainer_state.json`` of ``output_dir/best`` when it belongs to ``run_id`` and is intact, else None; a
    ``best/`` of another run is an error (it would be overwritten)."""
    best = Path(output_dir) / BEST_DIR
    if not (best / STATE_FILE).is_file():
        return None
    try:
        state = json.loads((best / STATE_FILE).read_text(encoding="utf-8"))
    except ValueError:
        state = None
    if not isinstance(state, dict):
        raise CheckpointError(f"{best / STATE_FILE}: not a JSON object, so it cannot tell which run {best} belongs "
                              f"to; move it away or choose another output_dir")
    if state.get("run_id", "") != run_id:  # "": written before runs had ids
        raise CheckpointError(f"{best} belongs to run {state.get('run_id')!r}, not to the resumed run {run_id!r}; "
                              f"move it away or choose another output_dir")
    try:
        return verify_checkpoint(best)
    except CheckpointError:
        return None


def truncate_log(output_dir: str | Path, step: int) -> int:
    """Drop ``train_log.jsonl`` lines after ``step`` (they are re-logged by the resumed run); returns how many."""
    path = Path(output_dir) / LOG_FILE
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if _logged_step(line) <= step]
    if len(kept) != len(lines):
        write_file(path, "".join(kept))
    return len(lines) - len(kept)


def _logged_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return float("inf")  # a torn last line from a killed process goes too
