"""Issue 9, command-line side: each row is a case that gave a wrong result or crashed, and the test that pins the fix.

| item | what went wrong | what happens now | test |
|---|---|---|---|
| 4 | `demo.sh --karpathy-json F --images R` after an earlier demo reused `runs/demo/prepared` (the other data set) and reported its metrics | the inputs and data settings are recorded in `WORK/demo_inputs.json`; a work dir built from others is refused, nothing deleted | `test_demo_reuses_only_what_was_built_from_the_same_inputs` |
| 6 | `trainer.evaluate_checkpoint --features` accepted a cache made by another backbone; other data's vocabulary went unnoticed | the cache's backbone fingerprint is checked as in training; a vocabulary that differs from the data's gives a warning with the overlap | `test_evaluate_refuses_a_feature_cache_of_another_backbone`, `test_evaluate_warns_with_the_vocabulary_overlap` |
| 8 | `trainer.caption` ignored EXIF orientation | images are turned upright before captioning | `test_caption_turns_images_upright` |
| 10 | `trainer.caption` aborted the batch on a decompression bomb and opened any Pillow format; `evaluate` with a missing split, `--beam-size 0` or `--out DIR` crashed with a traceback (`--out DIR` after decoding everything) | per-image error lines, exit 1; `Image.open(formats=...)`; evaluate: a one-line error before any work, exit 1 | `test_caption_reports_bombs_and_foreign_formats_per_image`, `test_evaluate_bad_arguments_are_one_line_errors`, `test_evaluate_missing_split_subprocess_prints_one_line` |
| 12 | `launch/slurm_multinode.sbatch`: `--requeue` alone does not requeue at the time limit | the early signal (`--signal=B:USR1@120`) is trapped: SIGTERM to srun, wait for the checkpoint, `scontrol requeue` | `test_slurm_script_requeues_after_the_early_signal` |
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from data_pipelines.features import extract_features
from data_pipelines.vocab import Vocabulary
from modeling import Captioner
from trainer import caption as caption_cli
from trainer import evaluate_checkpoint as evaluate_cli
from trainer.demo import run as demo


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return tiny_checkpoint


def copy_checkpoint(checkpoint: Path, target: Path) -> Path:
    shutil.copytree(checkpoint, target)
    return target


# item 4
def fake_python(folder: Path) -> Path:
    """A PYTHON for the demo's stages that runs inline scripts for real but stops at the first `-m` stage (exit 3)."""
    script = folder / "python"
    script.write_text(f'#!/bin/bash\nif [ "$1" = "-m" ]; then echo "FAKE STAGE $2"; exit 3; fi\n'
                      f'exec {sys.executable} "$@"\n')
    script.chmod(0o755)
    return script


def run_demo(capfd, work: Path, python: Path, *args) -> SimpleNamespace:
    """trainer.demo in-process, its stages run by ``python``; what it and its stages printed."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEMO_")}
    returncode = demo.main(["--work", str(work), *map(str, args)], {**env, "PYTHON": str(python)})
    stdout, stderr = capfd.readouterr()
    return SimpleNamespace(returncode=returncode, stdout=stdout, stderr=stderr)


def test_demo_reuses_only_what_was_built_from_the_same_inputs(tmp_path, capfd):
    python, work = fake_python(tmp_path), tmp_path / "work"
    (tmp_path / "mine").mkdir()
    mine = tmp_path / "mine" / "dataset.json"
    mine.write_text('{"images": []}')
    user = ["--karpathy-json", mine, "--images", tmp_path / "mine"]
    first = run_demo(capfd, work, python, *user)
    assert first.returncode == 3 and "FAKE STAGE data_pipelines.prepare" in first.stdout  # built, not reused
    (work / "prepared").mkdir(parents=True)
    (work / "prepared" / "manifest.json").write_text("{}")  # as if prepare had finished
    again = run_demo(capfd, work, python, *user)
    assert "prepare: reusing" in again.stdout and "FAKE STAGE data_pipelines.features" in again.stdout

    mine.write_text('{"images": [], "changed": true}')  # same path, other content
    changed = run_demo(capfd, work, python, *user)
    synthetic = run_demo(capfd, work, python)  # the built-in data set instead of the user's
    (work / "demo_inputs.json").unlink(missing_ok=True)  # a work dir from a demo.sh that recorded nothing
    unrecorded = run_demo(capfd, work, python, *user)
    for refused in (changed, synthetic, unrecorded):
        assert refused.returncode == 2 and "FAKE STAGE" not in refused.stdout
        assert "were built from other inputs or settings; not reusing them" in refused.stderr
        assert "pass another --work DIR, or delete those folders" in refused.stderr
    assert "nothing recorded" in unrecorded.stderr
    recorded = json.loads(changed.stderr.split("built from: ")[1].splitlines()[0])
    assert recorded["karpathy_json"] == str(mine) and recorded["image_size"] == "128"
    assert (work / "prepared" / "manifest.json").read_text() == "{}"  # nothing was deleted


# item 6
@pytest.fixture(scope="module")
def feature_cache(tiny, tmp_path_factory):
    _, data, _ = tiny
    cache = tmp_path_factory.mktemp("feature_cache") / "features"
    extract_features(data, cache, "none", image_size=48, batch_size=8, show_progress=False)
    return cache


def evaluate_args(checkpoint: Path, data: Path, out: Path, *extra) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--data", str(data), "--split", "test", "--beam-size", "1",
            "--max-len", "4", "--num-workers", "0", "--out", str(out), *map(str, extra)]


def test_evaluate_refuses_a_feature_cache_of_another_backbone(tiny, feature_cache, tmp_path, capsys):
    checkpoint, data, _ = tiny
    assert evaluate_cli.main(evaluate_args(checkpoint, data, tmp_path / "ok.json", "--features", feature_cache)) == 0
    # the fingerprint is the checkpoint's float32 backbone's, whatever dtype decoding then runs in
    assert evaluate_cli.main(evaluate_args(checkpoint, data, tmp_path / "ok_bf16.json", "--features", feature_cache,
                                           "--dtype", "bfloat16")) == 0
    other = copy_checkpoint(checkpoint, tmp_path / "other_backbone")
    model = Captioner.from_pretrained(checkpoint)
    with torch.no_grad():
        next(model.encoder.backbone.parameters()).add_(0.01)  # another frozen backbone, same architecture
    model.save_pretrained(other)
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli.main(evaluate_args(other, data, tmp_path / "bad.json", "--features", feature_cache))
    assert str(exit_info.value).startswith("error: ") and "backbone_fingerprint: cache has" in str(exit_info.value)
    assert not (tmp_path / "bad.json").exists()


def test_evaluate_warns_with_the_vocabulary_overlap(tiny, tmp_path, capsys):
    checkpoint, data, _ = tiny
    assert evaluate_cli.main(evaluate_args(checkpoint, data, tmp_path / "same.json")) == 0
    assert "vocabulary" not in capsys.readouterr().err
    other = copy_checkpoint(checkpoint, tmp_path / "other_vocab")
    words = Vocabulary.load(data / "vocab.json").itos[4:]
    replaced = len(words) // 2
    Vocabulary([f"unseen{i}" for i in range(replaced)] + words[replaced:]).save(other / "vocab.json")
    assert evaluate_cli.main(evaluate_args(other, data, tmp_path / "other.json")) == 0
    err = capsys.readouterr().err
    kept = len(words) - replaced
    assert (f"vocabulary is not the one of {data / 'vocab.json'}: {kept} of the data's {len(words)} words "
            f"({100 * kept / len(words):.1f}%)") in err


# item 8
def test_caption_turns_images_upright(tmp_path):
    image = Image.fromarray(np.zeros((30, 50, 3), dtype=np.uint8))  # stored 50 wide, 30 high
    exif = image.getexif()
    exif[0x0112] = 8  # "rotate 90 degrees counter-clockwise to view"
    image.save(tmp_path / "phone.jpg", exif=exif.tobytes())
    assert caption_cli.load_image(tmp_path / "phone.jpg").size == (30, 50)


# item 10
def decompression_bomb(path: Path, side: int = 20000) -> Path:
    """A tiny PNG whose header claims side x side pixels (Pillow refuses above 2 * MAX_IMAGE_PIXELS)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", side, side)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR CRC over type + data
    path.write_bytes(bytes(data))
    return path


def test_caption_reports_bombs_and_foreign_formats_per_image(tiny, tmp_path, capsys):
    checkpoint, _, images = tiny
    bomb = decompression_bomb(tmp_path / "bomb.png")
    foreign = tmp_path / "picture.tga"
    Image.new("RGB", (40, 30), "blue").save(foreign)
    good = str(images / "000001.jpg")
    status = caption_cli.main(["--checkpoint", str(checkpoint), str(bomb), good, str(foreign), "--beam-size", "1",
                               "--max-len", "4"])
    output = capsys.readouterr()
    assert status == 1
    assert [line.split("\t")[0] for line in output.out.strip().splitlines()] == [good]
    assert f"error: {bomb}: refused: Image size (400000000 pixels) exceeds limit" in output.err
    assert f"error: {foreign}: not a readable image file (formats read: JPEG, PNG" in output.err


@pytest.mark.parametrize("extra, message", [
    (["--beam-size", "0"], "error: argument --beam-size: must be >= 1, got 0"),  # argparse: usage line + this, exit 2
    (["--split", "nope"], "no split 'nope' (has ['test', 'train', 'val'])"),
    (["--out", "{tmp}"], "error: --out {tmp} is a directory; give the results file, e.g. {tmp}/results_test.json"),
])
def test_evaluate_bad_arguments_are_one_line_errors(tiny, tmp_path, capsys, extra, message):
    checkpoint, data, _ = tiny
    args = [*evaluate_args(checkpoint, data, tmp_path / "results.json"), *(a.format(tmp=tmp_path) for a in extra)]
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli.main(args)
    error = capsys.readouterr().err.splitlines()[-1] if exit_info.value.code == 2 else str(exit_info.value)
    assert message.format(tmp=tmp_path) in error and "\n" not in error


def test_evaluate_missing_split_subprocess_prints_one_line(tiny, tmp_path):
    checkpoint, data, _ = tiny
    completed = subprocess.run([sys.executable, "-m", "trainer.evaluate_checkpoint", *evaluate_args(checkpoint, data, tmp_path / "r.json"),
                                "--split", "nope"], cwd=REPO, capture_output=True, text=True, timeout=300,
                               env={**os.environ, "WORLD_SIZE": "1"})
    assert completed.returncode == 1
    assert [line for line in completed.stderr.splitlines() if line.strip()] == [
        f"error: {data / 'manifest.json'}: no split 'nope' (has ['test', 'train', 'val'])"]


# item 12
def test_slurm_script_requeues_after_the_early_signal(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text('#!/bin/bash\necho "scontrol $*" >> "$CALLS"\n'
                                      '[ "$1 $2" = "show hostnames" ] && echo node1\nexit 0\n')
    (bin_dir / "srun").write_text('#!/bin/bash\ntrap \'echo "srun got SIGTERM" >> "$CALLS"; exit 143\' TERM\n'
                                  'echo "srun started" >> "$CALLS"\nfor _ in $(seq 300); do sleep 0.1; done\n'
                                  'echo "srun ran to the end" >> "$CALLS"\n')
    for tool in ("scontrol", "srun"):
        (bin_dir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(log), "SLURM_JOB_ID": "4242",
           "SLURM_JOB_NODELIST": "node[1-2]", "SLURM_CPUS_PER_TASK": "16", "SLURM_SUBMIT_DIR": str(tmp_path)}
    script = REPO / "launch" / "slurm_multinode.sbatch"
    process = subprocess.Popen(["bash", str(script), "configs/coco.yaml"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while "srun started" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGUSR1)  # what SLURM sends the batch shell 120 s before the time limit
        process.wait(timeout=20)
    finally:
        process.kill()
    calls = log.read_text().splitlines()
    assert calls[-3:] == ["srun started", "srun got SIGTERM", "scontrol requeue 4242"], calls
    assert process.returncode == 0
    assert "#SBATCH --signal=B:USR1@120" in script.read_text()  # the signal SLURM must send for this to happen
