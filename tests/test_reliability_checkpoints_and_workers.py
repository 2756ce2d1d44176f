"""Checkpoints and exports from elsewhere, killed writers and folders a run does not own: each row is a case tried as a
hostile user would, and the test that pins the fix (docs/reliability.md, "Checkpoints, exports and killed writers").

| case | input | what happened | what happens now | test |
|---|---|---|---|---|
| -Infinity | `caption --json` when the decoding controls cannot be met | printed `-Infinity` (not JSON) | `"score": null` with a `score_note` saying why; the output is strict JSON | `test_caption_json_is_strict_json_when_no_caption_meets_the_controls` |
| weights | NaN or int32 tensors in `model.safetensors` | an empty caption, exit status 0 | refused, one line naming the file and tensor | `test_nan_or_integer_weights_are_refused_naming_the_tensor` |
| links out | a symlink inside a checkpoint leading out of it | followed | refused (inference and `verify_checkpoint`), naming the link and its target | `test_a_link_leading_out_of_a_checkpoint_is_refused` |
| ONNX controls | `sample` to the ONNX captioner; `beam_size=0`; a NaN length penalty | TypeError, IndexError, accepted | one line naming the control (the eager `trainer.caption` does the others) | `test_the_onnx_captioner_names_a_control_it_cannot_honour` |
| staging | a killed prepare / features left `.OUT.partial-PID-HOST` | no later run removed it | the next run beside it removes a dead writer's staging | `test_a_dead_writers_staging_is_removed_by_the_next_prepare` |
| orphans | prepare SIGKILLed while converting | once in five tries two workers outlived it | workers ask the kernel for SIGKILL when their parent dies (`PR_SET_PDEATHSIG`) | `test_a_worker_dies_with_its_killed_parent` |
| full disk | ENOSPC while writing shards, and again when closing them | the clean-up raised before removing its staging folder | the staging folder goes first, then the shards are closed | `test_a_full_disk_leaves_no_staging_folder` |
| overwrite | `--overwrite` on a folder holding only a `train_log.jsonl` | moved aside as if it were a run | refused: a run shows a checkpoint with a run id or its `config.yaml` | `test_overwrite_moves_only_a_folder_that_holds_a_run` |
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file, save_file
from test_data_prepare import make_images, write_karpathy

from data_pipelines import prepare
from data_pipelines.atomic_dir import this_host
from data_pipelines.image_conversion import start_pool
from data_pipelines.shard_writer import ShardWriter
from trainer.caption import main as caption_main
from trainer.checkpointing.checkpoint import CheckpointError, verify_checkpoint
from trainer.checkpointing.run_dir import OutputDirError, check_fresh_start
from trainer.inference.onnx_search import OnnxCaptioner
from trainer.inference.pipeline import load_for_inference


def copy_checkpoint(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_caption_json_is_strict_json_when_no_caption_meets_the_controls(tiny_checkpoint, capsys):
    checkpoint, _, images = tiny_checkpoint
    image = sorted(images.iterdir())[0]
    words = len(json.loads((checkpoint / "vocab.json").read_text())["words"])
    caption_main(["--checkpoint", str(checkpoint), str(image), "--json", "--max-len", str(words + 3), "--min-len",
                  str(words + 3), "--no-repeat-ngram-size", "1", "--suppress-unk", "--beam-size", "2"])
    line = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    caption = line["captions"][0]
    assert caption["score"] is None and caption["score_note"].startswith("-inf (no caption met the decoding controls")


@pytest.mark.parametrize("damage", ["nan", "int32"])
def test_nan_or_integer_weights_are_refused_naming_the_tensor(tiny_checkpoint, tmp_path, damage):
    checkpoint = copy_checkpoint(tiny_checkpoint[0], tmp_path / "ckpt")
    tensors = load_file(checkpoint / "model.safetensors")
    name = "decoder.output.weight"
    tensors[name] = tensors[name].fill_(math.nan) if damage == "nan" else tensors[name].to(torch.int32)
    save_file(tensors, str(checkpoint / "model.safetensors"), metadata={"format": "pt"})
    expected = "holds NaN or infinite values" if damage == "nan" else "is I32, expected a floating type"
    with pytest.raises(ValueError, match=f"model.safetensors: tensor '{name}' {expected}"):
        load_for_inference(checkpoint, None)


def test_a_link_leading_out_of_a_checkpoint_is_refused(tiny_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(tiny_checkpoint[0], tmp_path / "ckpt")
    outside = tmp_path / "private" / "vocab.json"
    outside.parent.mkdir()
    os.replace(checkpoint / "vocab.json", outside)
    (checkpoint / "vocab.json").symlink_to(outside)
    message = re.escape(f"{checkpoint / 'vocab.json'} is a symbolic link leading out of {checkpoint} (to {outside}); "
                        f"refused")
    with pytest.raises(ValueError, match=message):
        load_for_inference(checkpoint, None)
    with pytest.raises(CheckpointError, match=message):
        verify_checkpoint(checkpoint)
    os.replace(outside, checkpoint / "vocab.real.json")
    (checkpoint / "vocab.json").unlink()
    (checkpoint / "vocab.json").symlink_to("vocab.real.json")  # a link inside the folder is fine
    assert len(load_for_inference(checkpoint, None)[1]) > 4


@pytest.mark.parametrize("controls, message", [
    ({"sample": True}, "decoding control 'sample' is not supported by the ONNX captioner"),
    ({"min_length": 2}, "unknown decoding control 'min_length'; the controls are beam_size, max_len"),
    ({"beam_size": 0}, r"decoding control beam_size must be >= 1, got 0"),
    ({"length_penalty": math.nan}, r"decoding control length_penalty must be a finite number >= 0, got nan"),
])
def test_the_onnx_captioner_names_a_control_it_cannot_honour(controls, message):
    captioner = OnnxCaptioner.__new__(OnnxCaptioner)  # the controls are checked before the graphs run
    with pytest.raises(ValueError, match=message):
        captioner.caption(np.zeros((1, 3, 8, 8), dtype=np.float32), **controls)


def dataset_source(tmp_path: Path) -> Path:
    make_images(tmp_path / "src")
    return write_karpathy(tmp_path / "src")


def test_a_dead_writers_staging_is_removed_by_the_next_prepare(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)
    stale = tmp_path / f".out.partial-{dead}-{this_host()}"
    (stale / "sub").mkdir(parents=True)
    live = tmp_path / f".other.partial-{os.getpid()}-{this_host()}"
    live.mkdir()
    prepare.run(["karpathy", "--json", dataset_source(tmp_path), "--out", tmp_path / "out", "--image-size", 32,
                 "--min-word-freq", 1, "--workers", 1])
    assert not stale.exists() and live.is_dir() and (tmp_path / "out" / "manifest.json").is_file()


ORPHAN = """
import os, time
from data_pipelines.parent_death import die_with_parent
if os.fork() == 0:
    die_with_parent(os.getppid())
    print(os.getpid(), flush=True)
    time.sleep(60)
    os._exit(0)
time.sleep(60)
"""


def test_a_worker_dies_with_its_killed_parent():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    gone = subprocess.run([sys.executable, "-c", "from data_pipelines.parent_death import die_with_parent; "
                           "die_with_parent(1); print('still here')"], capture_output=True, text=True, cwd=REPO, env=env)
    assert gone.returncode == 1 and "still here" not in gone.stdout  # a parent already gone: the worker ends at once
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):  # the kernel kills the child when the parent dies; polled, at most 10 s
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the worker outlived its SIGKILLed parent")
    from data_pipelines.parent_death import die_with_parent

    pool = start_pool(2)
    try:
        assert pool._initializer is die_with_parent and pool._initargs == (os.getpid(),)
    finally:
        pool.shutdown()


def test_a_full_disk_leaves_no_staging_folder(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ShardWriter, "write", full)
    monkeypatch.setattr(ShardWriter, "abort", full)
    monkeypatch.setattr(ShardWriter, "__init__", lambda self, *args: setattr(self, "_tar", object()))
    with pytest.raises(OSError, match="No space left"):
        prepare.run(["karpathy", "--json", dataset_source(tmp_path), "--out", tmp_path / "out", "--image-size", 32,
                     "--min-word-freq", 1, "--workers", 1])
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".out.")] == []
    assert not (tmp_path / "out").exists()


def test_overwrite_moves_only_a_folder_that_holds_a_run(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "train_log.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(OutputDirError, match=f"output_dir {notes} holds {notes / 'train_log.jsonl'} but no checkpoint "
                                             f"or config.yaml of a run of this trainer"):
        check_fresh_start(notes, True, {})
    assert (notes / "train_log.jsonl").is_file()
    (notes / "config.yaml").write_text("output_dir: notes\ndata: {}\nmodel: {}\ntrain: {}\n")  # a run killed early
    moved = check_fresh_start(notes, True, {})
    assert moved is not None and (moved / "train_log.jsonl").is_file() and not notes.exists()
