"""trainer.inference.pipeline.CaptionPipeline: one call captions paths and PIL images like `trainer.caption` prints them, with
the checkpoint's preprocessing (EXIF orientation, image size), any batch size, n-best and attention on request;
`trainer.caption --json` lines."""
import json

import pytest
import torch
from PIL import Image

from data_pipelines.transforms import eval_transform
from trainer import caption as caption_cli
from trainer.inference import CaptionPipeline

CONTROLS = dict(beam_size=3, max_len=6, n_best=2, min_len=1, no_repeat_ngram_size=2, length_penalty=0.5)
CLI_CONTROLS = ["--beam-size", "3", "--max-len", "6", "--n-best", "2", "--min-len", "1", "--no-repeat-ngram-size",
                "2", "--length-penalty", "0.5"]


@pytest.fixture(scope="module")
def pipe(tiny_checkpoint):
    return CaptionPipeline.from_checkpoint(tiny_checkpoint[0])


@pytest.fixture(scope="module")
def paths(tiny_checkpoint):
    return [str(tiny_checkpoint[2] / f"00000{i}.jpg") for i in range(4)]


def test_pipeline_equals_what_the_caption_cli_prints(tiny_checkpoint, pipe, paths, capsys):
    results = pipe(paths, **CONTROLS)
    assert caption_cli.main(["--checkpoint", str(tiny_checkpoint[0]), *paths, *CLI_CONTROLS]) == 0
    printed = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [[result.source, caption.text] for result in results for caption in result.captions]
    assert caption_cli.main(["--checkpoint", str(tiny_checkpoint[0]), *paths, *CLI_CONTROLS, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert lines == [{"path": result.source, "captions": [{"text": c.text, "score": c.score} for c in result.captions]}
                     for result in results]


def test_pipeline_preprocesses_like_training_and_equals_generate(pipe, paths):
    results = pipe(paths, **CONTROLS)
    assert pipe.image_size == 48  # from the checkpoint's trainer_state.json
    pixels = torch.stack([eval_transform(48)(Image.open(path).convert("RGB")) for path in paths])
    generation = pipe.model.generate(pixels, **CONTROLS)
    assert [c.text for result in results for c in result.captions] == \
        [pipe.vocab.decode(tokens) for tokens in generation.tokens.tolist()]
    assert [c.score for result in results for c in result.captions] == pytest.approx(generation.scores.tolist())
    for result in results:
        assert len(result.captions) == 2 and result.captions[0].score >= result.captions[1].score


def test_pil_images_batch_sizes_and_exif_orientation(pipe, paths, tmp_path):
    expected = [[c.text for c in result.captions] for result in pipe(paths, **CONTROLS)]
    images = [Image.open(path) for path in paths]
    for batch_size in (1, 3):
        got = pipe(images, batch_size=batch_size, **CONTROLS)
        assert [[c.text for c in result.captions] for result in got] == expected
    sideways = tmp_path / "sideways.jpg"  # stored rotated, with the EXIF tag that turns it upright again
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.open(paths[0]).rotate(90, expand=True).save(sideways, exif=exif, quality=100)
    upright = pipe([sideways], **CONTROLS)[0]
    assert upright.image.size == Image.open(paths[0]).size


def test_attention_on_request_and_errors_per_image(pipe, paths, tmp_path):
    missing = str(tmp_path / "missing.jpg")
    results = pipe([paths[0], missing], attention=True, beam_size=2, max_len=6)
    caption = results[0].captions[0]
    assert caption.alphas.shape == (len(caption.text.split()), pipe.model.config.grid_size ** 2)
    assert results[1].captions == [] and results[1].error == "no such file"
    assert pipe([paths[0]], beam_size=2, max_len=6)[0].captions[0].alphas is None


def test_sampling_and_bfloat16_through_the_pipeline(tiny_checkpoint, paths):
    pipe = CaptionPipeline.from_checkpoint(tiny_checkpoint[0], dtype="bfloat16")
    first = pipe(paths, sample=True, seed=3, top_k=5, max_len=6, n_best=2, suppress_unk=True)
    again = pipe(paths[2:], sample=True, seed=5, top_k=5, max_len=6, n_best=2, suppress_unk=True, batch_size=1)
    assert [[c.text for c in r.captions] for r in first[2:]] == [[c.text for c in r.captions] for r in again]
    assert all("<unk>" not in c.text for r in first for c in r.captions)


def test_a_folder_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        CaptionPipeline.from_checkpoint(tmp_path / "nothing")
    with pytest.raises(ValueError, match="dtype must be one of"):
        CaptionPipeline.from_checkpoint(tmp_path, dtype="float16")
