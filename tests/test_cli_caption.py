"""`python -m trainer.caption`: captions per image, attention PNG grid, per-image errors."""
import subprocess
import sys

import pytest
from conftest import REPO
from conftest import TINY_IMAGE_SIZE as IMAGE_SIZE
from PIL import Image

from trainer import caption as caption_cli
from trainer.evaluation.attention_maps import LABEL_HEIGHT, PANEL_COLUMNS


def parse_captions(stdout: str) -> dict:
    return dict(line.split("\t", 1) for line in stdout.strip().splitlines())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_captions_and_attention_grid(tiny_checkpoint, tmp_path, capsys, dtype):
    checkpoint, _, images = tiny_checkpoint
    paths = [str(images / "000000.jpg"), str(images / "000001.jpg")]
    attention_dir = tmp_path / "attention"
    assert caption_cli.main(["--checkpoint", str(checkpoint), *paths, "--beam-size", "2", "--max-len", "6",
                             "--attention-dir", str(attention_dir), "--dtype", dtype]) == 0
    captions = parse_captions(capsys.readouterr().out)
    assert list(captions) == paths
    for path in paths:
        words = captions[path].split()
        assert 1 <= len(words) <= 6
        panels = 1 + len(words)  # the image, then one panel per word
        columns = min(PANEL_COLUMNS, panels)
        rows = -(-panels // columns)
        figure = Image.open(attention_dir / (path.rsplit("/", 1)[-1].replace(".jpg", ".png")))
        assert figure.size == (columns * IMAGE_SIZE, rows * (IMAGE_SIZE + LABEL_HEIGHT))


def test_missing_and_corrupt_images_fail_alone(tiny_checkpoint, tmp_path, capsys):
    checkpoint, _, images = tiny_checkpoint
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg")
    good = str(images / "000002.jpg")
    status = caption_cli.main(["--checkpoint", str(checkpoint), str(tmp_path / "missing.jpg"), good, str(corrupt),
                               "--beam-size", "1", "--max-len", "4"])
    output = capsys.readouterr()
    assert status == 1
    assert list(parse_captions(output.out)) == [good]
    assert f"error: {tmp_path / 'missing.jpg'}: no such file" in output.err
    assert f"error: {corrupt}: not a readable image file" in output.err


@pytest.mark.slow
def test_caption_cli_subprocess(tiny_checkpoint, tmp_path):
    checkpoint, _, images = tiny_checkpoint
    good = str(images / "000003.jpg")
    completed = subprocess.run(
        [sys.executable, "-m", "trainer.caption", "--checkpoint", checkpoint, good, tmp_path / "missing.png",
         "--attention-dir", tmp_path / "att"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 1
    assert list(parse_captions(completed.stdout)) == [good]
    assert "missing.png: no such file" in completed.stderr
    assert (tmp_path / "att" / "000003.png").is_file()
