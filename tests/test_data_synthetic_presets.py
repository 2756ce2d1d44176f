"""Synthetic presets and knobs: every preset writes valid Karpathy JSON whose captions, words and images follow its
knobs; presets differ in vocabulary, wording and look; the default preset still writes the original demo set."""
import hashlib
import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from data_pipelines import prepare, synthetic
from data_pipelines.vocab import tokenize

# sha256 of dataset_synthetic.json written by the generator before presets existed (20 images, seed 0, 64 px)
ORIGINAL_DEMO_JSON_SHA256 = "4dc1f6e92b425459a8f09cfca7029c4a30c44a99ecd5deb7884f441a619a17af"


def load(path):
    return json.loads(path.read_text())["images"]


def read_image(path):
    """The decoded RGB pixels, or None for a corrupt file."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=float)
    except OSError:  # UnidentifiedImageError, truncated data
        return None


def template_words(preset):
    """Words the templates and relations add around the content words."""
    text = " ".join([*preset.single_templates, *preset.pair_templates, *(" ".join(r) for r in preset.relations.values())])
    return set(tokenize(text.replace("{", " ").replace("}", " "))) | {"an"}


def check_dataset(root, preset, num_images):
    """Assert the Karpathy JSON under ``root`` follows every knob of ``preset``; returns the entries."""
    entries = load(root / synthetic.JSON_NAME)
    assert len(entries) == num_images and [e["imgid"] for e in entries] == list(range(num_images))
    num_val = num_test = round(num_images * 0.1)
    assert Counter(e["split"] for e in entries) == {"train": num_images - num_val - num_test, "val": num_val,
                                                   "test": num_test}
    allowed = preset.words() | template_words(preset)
    bad_files = 0
    for entry in entries:
        sentences = entry["sentences"]
        raws = [s["raw"] for s in sentences]
        assert len(raws) == preset.captions_per_image == len(set(raws))
        assert entry["sentids"] == [s["sentid"] for s in sentences]
        scene = entry["scene"]
        assert scene["layout"] in ("single", "horizontal", "vertical")
        assert len(scene["shapes"]) == (1 if scene["layout"] == "single" else 2)
        for sentence in sentences:
            raw = sentence["raw"]
            assert sentence["tokens"] == tokenize(raw) and set(sentence["tokens"]) <= allowed, raw
            assert raw.endswith(preset.end_punctuation) and raw[0].isupper() == preset.capitalise, raw
        for shape in scene["shapes"]:
            assert shape["colour"] in preset.colours and shape["shape"] in preset.shapes
            assert all(f"{shape['colour']} {preset.shape_word(shape['shape'])}" in raw for raw in raws)
            low, high = preset.pair_size if len(scene["shapes"]) == 2 else preset.single_sizes[scene["size_word"]]
            assert low * preset.image_size <= shape["size"] <= high * preset.image_size
        if scene["layout"] == "single":
            assert all(scene["size_word"] in raw for raw in raws)
        pixels = read_image(root / entry["filepath"] / entry["filename"])
        if pixels is None:
            bad_files += 1
        else:
            assert pixels.shape == (preset.image_size, preset.image_size, 3)
    assert bad_files <= max(3, 3 * preset.bad_file_fraction * num_images)
    return entries


# the presets of fixed templates (the grid presets have their own checks: test_data_synthetic_grid.py)
TEMPLATE_PRESETS = sorted(name for name, preset in synthetic.PRESETS.items() if isinstance(preset, synthetic.Preset))


@pytest.mark.parametrize("name", TEMPLATE_PRESETS)
def test_each_preset_writes_karpathy_json_following_its_knobs(tmp_path, name):
    preset = synthetic.get_preset(name)
    synthetic.generate(tmp_path, 60, seed=0, preset=name)
    entries = check_dataset(tmp_path, preset, 60)
    layouts = Counter(e["scene"]["layout"] for e in entries)
    assert set(layouts) == {"single", "horizontal", "vertical"}  # both object counts and both relations occur


def test_knobs_override_size_palette_wording_and_punctuation(tmp_path):
    knobs = {"colours": ["red", "white"], "shapes": ["star", "cross"], "captions_per_image": 3,
             "end_punctuation": "?", "capitalise": True, "two_object_probability": 1.0}
    subprocess.run([sys.executable, "-m", "data_pipelines.synthetic", "--preset", "toys", "--out", str(tmp_path),
                    "--num-images", "30", "--image-size", "48", *(f"{k}={json.dumps(v)}" for k, v in knobs.items())],
                   check=True, capture_output=True)
    preset = synthetic.resolve_preset("toys", 48, knobs)
    entries = check_dataset(tmp_path, preset, 30)
    assert all(e["scene"]["layout"] != "single" for e in entries)
    assert {s["colour"] for e in entries for s in e["scene"]["shapes"]} == {"red", "white"}


def test_presets_differ_in_vocabulary_wording_and_look(tmp_path):
    words, first_words, backgrounds = {}, {}, {}
    for name in sorted(synthetic.PRESETS):
        entries = load(synthetic.generate(tmp_path / name, 40, seed=0, preset=name))
        words[name] = {w for e in entries for s in e["sentences"] for w in s["tokens"]}
        first_words[name] = Counter(s["tokens"][0] for e in entries for s in e["sentences"])
        corners = []
        for entry in entries:
            pixels = read_image(tmp_path / name / entry["filepath"] / entry["filename"])
            if pixels is not None:
                corners.append(pixels[:6, :6].reshape(-1, 3))
        backgrounds[name] = (np.stack(corners).std(axis=1).mean(), np.stack(corners).mean(axis=1).std(axis=0).mean())
    names = sorted(words)
    for index, a in enumerate(names):
        for b in names[index + 1:]:
            assert len(words[a] ^ words[b]) >= 10, (a, b)  # different vocabularies
            assert first_words[a] != first_words[b]  # different wording
    noise, tint = zip(*(backgrounds[name] for name in ("shapes", "toys", "cluttered")))
    assert noise[0] < 2 and noise[2] > 8  # plain vs noisy pixels
    assert tint[0] < 1 and tint[1] > 3 and tint[2] > 3  # one background vs tinted backgrounds


def test_default_preset_is_the_original_demo_set(tmp_path):
    path = synthetic.generate(tmp_path, 20, seed=0, image_size=64)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ORIGINAL_DEMO_JSON_SHA256


def test_corrupt_files_of_a_preset_are_skipped_by_prepare(tmp_path):
    path = synthetic.generate(tmp_path / "syn", 40, seed=0, preset="cluttered", image_size=48,
                              knobs={"bad_file_fraction": 0.2})
    unreadable = [e["imgid"] for e in load(path) if read_image(tmp_path / "syn" / e["filepath"] / e["filename"]) is None]
    assert 2 <= len(unreadable) <= 16
    manifest = prepare.run(["karpathy", "--json", path, "--out", tmp_path / "out", "--image-size", 48,
                            "--min-word-freq", 1, "--workers", 1, "--shard-size", 8])
    assert sum(split["images"] for split in manifest["splits"].values()) == 40 - len(unreadable)


def test_bad_knobs_and_presets_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic preset 'nope'"):
        synthetic.generate(tmp_path, 2, seed=0, preset="nope")
    with pytest.raises(ValueError, match="unknown synthetic knob 'colors'"):
        synthetic.generate(tmp_path, 2, seed=0, knobs={"colors": ["red"]})
    with pytest.raises(ValueError, match="colours must be a non-empty subset"):
        synthetic.generate(tmp_path, 2, seed=0, knobs={"colours": ["mauve"]})
    with pytest.raises(ValueError, match="image_size must be an int >= 32"):
        synthetic.generate(tmp_path, 2, seed=0, image_size=16)
    result = subprocess.run([sys.executable, "-m", "data_pipelines.synthetic", "--out", str(tmp_path),
                             "--num-images", "2", "captions_per_image=9"], capture_output=True, text=True)
    assert result.returncode != 0 and "captions_per_image must be between 1" in result.stderr
