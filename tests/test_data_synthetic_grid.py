"""The grid presets (scenes, textures): deterministic for a seed; every caption names only drawn objects with their
counts, and its relations, neighbours, lines and positions are the drawn ones; objects never overlap and are drawn
with their colour and texture; they are harder than shapes; the CLI, prepare and demo.sh take them."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_data_synthetic import files

from data_pipelines import synthetic
from data_pipelines.synthetic.grid_presets import CELL_NAMES, NUMBER_WORDS, plural
from data_pipelines.vocab import tokenize

REPO = Path(__file__).resolve().parents[1]
GRID_PRESETS = sorted(name for name, preset in synthetic.PRESETS.items() if isinstance(preset, synthetic.GridPreset))
ADJACENT = ("next to", "beside", "side by side")  # the catalogue's neighbour wordings
LINES = {"in a row": "row", "in a column": "column"}


def load(path):
    return json.loads(path.read_text())["images"]


def look(shape, preset):
    return shape["size_word"] if len(preset.sizes) > 1 else "", shape["texture"], shape["colour"], shape["shape"]


def spoken(preset, phrase):
    return [phrase, *preset.synonyms.get(phrase, ())]


def lexicon(preset):
    """word -> (part, meaning): what each content word of the preset's captions says about an object."""
    words = {colour: ("colour", colour) for colour in preset.colours}
    for shape in preset.shapes:
        for word in spoken(preset, preset.shape_word(shape)):
            words[word], words[plural(word)] = ("shape", shape), ("shapes", shape)
    for size in preset.sizes if len(preset.sizes) > 1 else ():
        words.update({word: ("size", size) for word in spoken(preset, size)})
    for texture in set(preset.textures) - {"solid"}:
        words.update({word: ("texture", texture) for word in spoken(preset, texture)})
    return words


def noun_phrases(tokens, words):
    """[(start, end, count, look)] for every "a|an|NUMBER [size] [texture] colour shape" in ``tokens``."""
    phrases = []
    for index, token in enumerate(tokens):
        if words.get(token, ("",))[0] != "colour":
            continue
        part, shape = words[tokens[index + 1]]
        start, size, texture = index, "", "solid"
        if words.get(tokens[start - 1], ("",))[0] == "texture":
            start, texture = start - 1, words[tokens[start - 1]][1]
        if words.get(tokens[start - 1], ("",))[0] == "size":
            start, size = start - 1, words[tokens[start - 1]][1]
        article = tokens[start - 1]
        count = 1 if article in ("a", "an") else NUMBER_WORDS.index(article)
        assert part == ("shapes" if count > 1 else "shape"), tokens
        phrases.append((start - 1, index + 2, count, (size, texture, token, shape)))
    return phrases


def find(tokens, phrase):
    """Start of each occurrence of ``phrase`` (words) in ``tokens``."""
    words = phrase.split()
    return [i for i in range(len(tokens) - len(words) + 1) if tokens[i:i + len(words)] == words]


def check_caption(tokens, shapes, preset, said):
    """Assert one caption's noun phrases, relations, neighbours, lines and positions hold in the scene; counts in
    ``said`` what was checked."""
    words, looks = lexicon(preset), [look(shape, preset) for shape in shapes]
    counts, nps = Counter(looks), noun_phrases(tokens, words)
    assert nps and all(0 < count <= counts[key] for _, _, count, key in nps), tokens
    said["counted"] += any(count > 1 for _, _, count, _ in nps)

    def only(np):  # the one drawn object a singular noun phrase names
        assert np[2] == 1 and counts[np[3]] == 1, tokens
        return shapes[looks.index(np[3])]

    places = {i for phrase in preset.positions.values() for wording in spoken(preset, phrase)
              for start in find(tokens, wording) for i in range(start, start + len(wording.split()))}
    for relation, phrase in preset.relations.items():
        for wording in spoken(preset, phrase):
            for start in find(tokens, wording):
                end = start + len(wording.split())
                if start in places:  # "left of" in "on the left of the picture"
                    continue
                subject = only([np for np in nps if np[1] <= start][-1])
                other = only(nps[0] if tokens[end] == "it" else next(np for np in nps if np[0] >= end))
                axis = 0 if relation in ("left", "right") else 1  # same row and x order, or same column and y order
                assert subject["cell"][axis] == other["cell"][axis], tokens
                before = subject["centre"][axis] < other["centre"][axis]
                assert before == (relation in ("left", "above")), tokens
                said["relation"] += 1
    if any(find(tokens, phrase) for phrase in ADJACENT):
        first, second = map(only, nps)
        assert first["cell"][0] == second["cell"][0] and abs(first["cell"][1] - second["cell"][1]) == 1, tokens
        said["adjacent"] += 1
    lines = {"row": [[s for s in shapes if s["cell"][0] == i] for i in range(3)],
             "column": [[s for s in shapes if s["cell"][1] == i] for i in range(3)]}
    for phrase, orientation in LINES.items():
        if find(tokens, phrase):
            listed = [key for _, _, count, key in nps for _ in range(count)]
            assert any([look(s, preset) for s in line] == listed for line in lines[orientation]), tokens
            said["line"] += 1
    if "between" in tokens:
        split = tokens.index("between")
        middle = only([np for np in nps if np[1] <= split][-1])
        ends = Counter(key for start, _, count, key in nps if start > split for _ in range(count))
        full = [line for line in [*lines["row"], *lines["column"]] if len(line) == 3 and line[1] is middle]
        assert any(Counter(look(s, preset) for s in (line[0], line[2])) == ends for line in full), tokens
        said["between"] += 1
    for cell_name, phrase in preset.positions.items():
        if len(nps) == 1 and any(find(tokens, wording) for wording in spoken(preset, phrase)):
            row, column = only(nps[0])["cell"]
            assert CELL_NAMES[row][column] == cell_name, tokens
            said["position"] += 1


def near(pixel, colour, tolerance=45):
    return np.abs(np.asarray(pixel, dtype=float) - colour).max() < tolerance


def check_drawing(pixels, shapes, preset, background):
    """Assert each object lies in its own cell (so none overlap) and shows its colour as its texture says."""
    cell = preset.image_size / 3
    boxes = []
    for shape in shapes:
        (x, y), half, (row, column) = shape["centre"], shape["size"] / 2, shape["cell"]
        assert column * cell <= x - half and x + half <= (column + 1) * cell, shape
        assert row * cell <= y - half and y + half <= (row + 1) * cell, shape
        boxes.append((x - half, y - half, x + half, y + half))
        box = pixels[round(y - half):round(y + half), round(x - half):round(x + half)].reshape(-1, 3)
        coloured = np.mean([near(p, synthetic.PALETTE[shape["colour"]]) for p in box])
        centre = pixels[round(y), round(x)]
        if shape["texture"] == "solid":
            assert near(centre, synthetic.PALETTE[shape["colour"]]), shape
        else:
            assert 0.03 < coloured < 0.6 and np.mean([near(p, background) for p in box]) > 0.3, shape
        if shape["texture"] == "outlined":
            assert near(centre, background), shape
    for index, (left, top, right, bottom) in enumerate(boxes):
        assert all(right <= other[0] or other[2] <= left or bottom <= other[1] or other[3] <= top
                   for other in boxes[index + 1:])


@pytest.mark.parametrize("name", GRID_PRESETS)
def test_same_seed_same_files_other_seed_other_scenes(tmp_path, name):
    subprocess.run([sys.executable, "-m", "data_pipelines.synthetic", "--preset", name, "--out", str(tmp_path / "a"),
                    "--num-images", "12", "--seed", "3"], check=True, capture_output=True)
    synthetic.generate(tmp_path / "b", 12, seed=3, preset=name)
    synthetic.generate(tmp_path / "c", 12, seed=4, preset=name)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    scenes = [[e["scene"] for e in load(tmp_path / d / synthetic.JSON_NAME)] for d in "bc"]
    assert scenes[0] != scenes[1]


@pytest.mark.parametrize("name", GRID_PRESETS)
def test_captions_are_true_to_the_drawn_scene(tmp_path, name):
    preset = synthetic.get_preset(name)
    entries = load(synthetic.generate(tmp_path, 150, seed=0, preset=name))
    assert Counter(e["split"] for e in entries) == {"train": 120, "val": 15, "test": 15}
    said, vocabulary = Counter(), preset.words()
    for entry in entries:
        shapes, raws = entry["scene"]["shapes"], [s["raw"] for s in entry["sentences"]]
        assert len(shapes) in preset.object_counts and len(raws) == 5 == len(set(raws))
        assert [s["cell"] for s in shapes] == sorted(s["cell"] for s in shapes)  # reading order
        for sentence in entry["sentences"]:
            raw, tokens = sentence["raw"], sentence["tokens"]
            assert tokens == tokenize(raw) and set(tokens) <= vocabulary, raw
            assert raw.endswith(preset.end_punctuation) and raw[0].isupper() == preset.capitalise, raw
            check_caption(tokens, shapes, preset, said)
        first = entry["sentences"][0]["tokens"]
        inventory = noun_phrases(first, lexicon(preset))  # the first caption names every object
        outside = [w for i, w in enumerate(first) if not any(start <= i < end for start, end, _, _ in inventory)]
        assert all(len(s["tokens"]) <= preset.max_words for s in entry["sentences"][1:])
        assert len(first) <= preset.max_words or set(outside) <= {"and"}, first  # only a bare list may be longer
        assert Counter({key: count for _, _, count, key in inventory}) == Counter(look(s, preset) for s in shapes)
        assert len(inventory) == len({key for _, _, _, key in inventory})
        with Image.open(tmp_path / entry["filepath"] / entry["filename"]) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=float)
        check_drawing(pixels, shapes, preset, entry["scene"].get("background", preset.background))
    assert all(said[kind] >= 3 for kind in ("counted", "relation", "adjacent", "line", "between", "position")), said


def test_textures_are_drawn_as_named():
    preset = synthetic.get_preset("textures")
    scene = {"layout": "grid", "background": [255, 255, 255], "shapes": [
        {"colour": "blue", "shape": "square", "texture": texture, "size": 40.0, "centre": [30.0 + 50 * i, 80.0]}
        for i, texture in enumerate(synthetic.DRAWABLE_TEXTURES)]}
    wide_and_clean = synthetic.with_knobs(preset, {"noise": 0.0, "image_size": 220})
    pixels = np.asarray(synthetic.draw_scene(scene, wide_and_clean), dtype=float)
    blue = [[near(p, synthetic.PALETTE["blue"]) for p in pixels[62:98, 12 + 50 * i:48 + 50 * i].reshape(-1, 3)]
            for i in range(4)]
    solid, striped, dotted, outlined = np.mean(blue, axis=1)
    assert solid == 1 and 0.4 < striped < 0.6 and 0.15 < dotted < 0.45 and 0.1 < outlined < 0.45
    column = [near(p, synthetic.PALETTE["blue"]) for p in pixels[62:98, 80]]  # down through the striped square
    assert sum(a != b for a, b in zip(column, column[1:])) >= 6  # bands, not one block
    assert not any(near(p, synthetic.PALETTE["blue"]) for p in pixels[72:88, 172:188].reshape(-1, 3))  # hollow


def test_grid_presets_are_harder_than_shapes(tmp_path):
    stats = {}
    for name in ["shapes", *GRID_PRESETS]:
        captions = [s["tokens"] for e in load(synthetic.generate(tmp_path / name, 200, seed=0, preset=name))
                    for s in e["sentences"]]
        stats[name] = len({w for c in captions for w in c}), np.mean([len(c) for c in captions])
    for name in GRID_PRESETS:
        assert stats[name][0] >= 2 * stats["shapes"][0] and stats[name][1] >= 1.25 * stats["shapes"][1], stats


def test_cli_knobs_and_prepare_take_a_grid_preset(tmp_path):
    knobs = ["object_counts=[3]", "textures=[striped]", "max_words=14"]
    subprocess.run([sys.executable, "-m", "data_pipelines.synthetic", "--preset", "textures", "--num-images", "20",
                    "--out", str(tmp_path / "syn"), *knobs], check=True, capture_output=True)
    entries = load(tmp_path / "syn" / synthetic.JSON_NAME)
    assert all(len(e["scene"]["shapes"]) == 3 and {s["texture"] for s in e["scene"]["shapes"]} == {"striped"}
               for e in entries)
    subprocess.run([sys.executable, "-m", "data_pipelines.prepare", "karpathy", "--json",
                    str(tmp_path / "syn" / synthetic.JSON_NAME), "--images", str(tmp_path / "syn"), "--out",
                    str(tmp_path / "prep"), "--min-word-freq", "1", "--image-size", "64", "--shard-size", "8",
                    "--workers", "1"], check=True, capture_output=True)
    manifest = json.loads((tmp_path / "prep" / "manifest.json").read_text())
    assert {split: e["images"] for split, e in manifest["splits"].items()} == {"train": 16, "val": 2, "test": 2}
    words = {w for e in entries if e["split"] == "train" for s in e["sentences"] for w in s["tokens"]}
    assert words <= set(json.loads((tmp_path / "prep" / "vocab.json").read_text())["words"])


def test_bad_grid_knobs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic knob 'single_templates'.*object_counts"):
        synthetic.generate(tmp_path, 2, seed=0, preset="scenes", knobs={"single_templates": ["a {thing}"]})
    with pytest.raises(ValueError, match="object_counts must be numbers from 1 to 9"):
        synthetic.generate(tmp_path, 2, seed=0, preset="scenes", knobs={"object_counts": [0, 2]})
    with pytest.raises(ValueError, match=r"templates\['pair'\] must be a non-empty list using only"):
        synthetic.resolve_preset("scenes", knobs={"templates": {**synthetic.get_preset("scenes").templates,
                                                                "pair": ["{a} near {thing}"]}})


@pytest.mark.parametrize("name", GRID_PRESETS)
def test_demo_help_lists_the_grid_presets(name):
    help_text = subprocess.run(["bash", str(REPO / "launch" / "demo.sh"), "--preset", name, "--help"], check=True,
                               capture_output=True, text=True).stdout
    assert all(preset in help_text for preset in synthetic.PRESETS)
