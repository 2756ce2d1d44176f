"""Issue 22, inference side: each row is a case that lost a file or ended in a traceback, and the test that pins it.

| case | what went wrong | what happens now | test |
|---|---|---|---|
| C4 | `caption --attention-dir` = the image folder: the input `a.png` and an unrelated `b.png` were overwritten by maps | an attention dir that holds an input image is refused before any work; a map never replaces a file (exclusive create, the next free `STEM-N.png`) | `test_attention_dir_holding_an_input_is_refused`, `test_attention_maps_never_replace_a_file` |
| C7 | `evaluate_checkpoint --out DATA/manifest.json` replaced the dataset's manifest | an `--out` inside `--data`/`--features`, or inside the checkpoint other than `results_*.json`, is refused before any work | `test_evaluate_refuses_an_out_inside_its_inputs` |
| checkpoint | `caption --checkpoint` at a missing dir, a text file or a folder whose config.json lacks fields: a traceback | one-line error naming the path | `test_caption_names_a_checkpoint_that_is_not_one` |
| image size | `image_size: [64]` (or -5, "abc", true) in a checkpoint's trainer_state.json: a TypeError traceback (or a silently wrong size) | one-line error naming the file, the key, the value and what was expected | `test_a_wrong_image_size_in_trainer_state_is_a_one_line_error` |
| attention dir | `caption --attention-dir` under a file: a traceback after the model was loaded, no caption printed | checked up front: one-line error | `test_attention_dir_under_a_file_is_a_one_line_error` |
| ranges | `caption --batch-size 0` / `--beam-size 0` / `--max-len 0`: a traceback from deep inside decoding | argparse type functions reject them up front (usage error naming the flag) | `test_caption_argument_ranges_are_checked_up_front` |
"""
from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from trainer import caption as caption_cli
from trainer import evaluate_checkpoint as evaluate_cli


def caption(checkpoint, *args):
    return caption_cli.main(["--checkpoint", str(checkpoint), "--beam-size", "1", "--max-len", "4", *map(str, args)])


def one_line_exit(call) -> str:
    with pytest.raises(SystemExit) as exit_info:
        call()
    message = str(exit_info.value)
    assert message.startswith("error: ") and "\n" not in message
    return message


def test_attention_dir_holding_an_input_is_refused(tiny_checkpoint, tmp_path, capsys):
    checkpoint, _, images = tiny_checkpoint
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(images / "000000.jpg", folder / "a.png")  # a JPEG named .png: the map's name today
    (folder / "b.png").write_bytes(b"not ours")
    shutil.copy(images / "000001.jpg", tmp_path / "b.jpg")
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    message = one_line_exit(lambda: caption(checkpoint, folder / "a.png", tmp_path / "b.jpg", "--attention-dir", folder))
    assert "holds the input image" in message
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert capsys.readouterr().out == ""


def test_attention_maps_never_replace_a_file(tiny_checkpoint, tmp_path, capsys):
    checkpoint, _, images = tiny_checkpoint
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "000002.png").write_bytes(b"someone else's file")
    assert caption(checkpoint, images / "000002.jpg", "--attention-dir", maps) == 0
    assert (maps / "000002.png").read_bytes() == b"someone else's file"
    assert Image.open(maps / "000002-2.png").size[0] > 0
    assert caption(checkpoint, images / "000002.jpg", "--attention-dir", maps, "--json") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1])["attention"] == str(maps / "000002-3.png")


def test_evaluate_refuses_an_out_inside_its_inputs(tiny_checkpoint, tmp_path):
    checkpoint, data, _ = tiny_checkpoint
    manifest = (data / "manifest.json").read_bytes()
    config = (checkpoint / "config.json").read_bytes()
    base = ["--checkpoint", str(checkpoint), "--data", str(data), "--split", "test", "--beam-size", "1",
            "--max-len", "4", "--num-workers", "0"]
    message = one_line_exit(lambda: evaluate_cli.main([*base, "--out", str(data / "manifest.json")]))
    assert "is inside --data" in message
    message = one_line_exit(lambda: evaluate_cli.main([*base, "--out", str(checkpoint / "config.json")]))
    assert "is inside --checkpoint" in message
    assert (data / "manifest.json").read_bytes() == manifest and (checkpoint / "config.json").read_bytes() == config


def test_caption_names_a_checkpoint_that_is_not_one(tiny_checkpoint, tmp_path):
    checkpoint, _, images = tiny_checkpoint
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    (broken / "config.json").write_text(json.dumps({"feature_dim": 256}))  # no vocab_size
    for bad in (tmp_path / "missing", text_file, broken):
        assert str(bad) in one_line_exit(lambda: caption(bad, images / "000000.jpg"))


@pytest.mark.parametrize("image_size", [[64], -5, "abc", True, 64.5])
def test_a_wrong_image_size_in_trainer_state_is_a_one_line_error(tiny_checkpoint, tmp_path, image_size):
    checkpoint, _, images = tiny_checkpoint
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    state = json.loads((broken / "trainer_state.json").read_text())
    state.setdefault("train_config", {}).setdefault("data", {})["image_size"] = image_size
    (broken / "trainer_state.json").write_text(json.dumps(state))
    message = one_line_exit(lambda: caption(broken, images / "000000.jpg"))
    assert "trainer_state.json" in message and "image_size" in message and "positive integer" in message


def test_attention_dir_under_a_file_is_a_one_line_error(tiny_checkpoint, tmp_path, capsys):
    checkpoint, _, images = tiny_checkpoint
    blocker = tmp_path / "file"
    blocker.write_text("x")
    message = one_line_exit(lambda: caption(checkpoint, images / "000000.jpg", "--attention-dir", blocker / "maps"))
    assert "--attention-dir" in message and "cannot create it" in message
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("flag", ["--batch-size", "--beam-size", "--max-len"])
def test_caption_argument_ranges_are_checked_up_front(tiny_checkpoint, capsys, flag):
    checkpoint, _, images = tiny_checkpoint
    with pytest.raises(SystemExit) as exit_info:
        caption(checkpoint, images / "000000.jpg", flag, "0")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: must be >= 1, got 0" in err
