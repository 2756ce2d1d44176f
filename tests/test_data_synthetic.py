"""Synthetic demo dataset (default preset): deterministic, valid Karpathy JSON, captions describe the drawn scene,
prepare works on it."""
import json
import subprocess
import sys
from collections import Counter

import numpy as np
from PIL import Image
from test_data_prepare import read_shards

from data_pipelines import prepare, synthetic
from data_pipelines.vocab import tokenize


def files(folder):
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_same_seed_same_files_other_seed_other_scenes(tmp_path):
    subprocess.run([sys.executable, "-m", "data_pipelines.synthetic", "--out", str(tmp_path / "a"), "--num-images",
                    "12", "--seed", "3", "--image-size", "64"], check=True, capture_output=True)
    synthetic.generate(tmp_path / "b", 12, seed=3, image_size=64)
    synthetic.generate(tmp_path / "c", 12, seed=4, image_size=64)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    scenes = [[e["scene"] for e in json.loads((tmp_path / d / "dataset_synthetic.json").read_text())["images"]]
              for d in "bc"]
    assert scenes[0] != scenes[1]


def test_karpathy_json_is_valid_with_splits_and_five_human_style_captions(tmp_path):
    path = synthetic.generate(tmp_path, 50, seed=0, image_size=64)
    data = json.loads(path.read_text())
    assert data["dataset"] == "synthetic" and len(data["images"]) == 50
    assert Counter(e["split"] for e in data["images"]) == {"train": 40, "val": 5, "test": 5}
    words = Counter()
    for index, entry in enumerate(data["images"]):
        assert entry["imgid"] == index and (tmp_path / entry["filepath"] / entry["filename"]).is_file()
        raws = [s["raw"] for s in entry["sentences"]]
        assert len(raws) == 5 and len(set(raws)) == 5 and entry["sentids"] == [s["sentid"] for s in entry["sentences"]]
        for sentence in entry["sentences"]:
            assert sentence["raw"][0].isupper() and sentence["raw"].endswith(".")
            assert sentence["tokens"] == tokenize(sentence["raw"])
            words.update(sentence["tokens"])
        for shape in entry["scene"]["shapes"]:  # every caption names every shape's colour and kind
            assert all(f"{shape['colour']} {shape['shape']}" in raw for raw in raws)
    assert 20 <= len(words) <= 40


def test_images_show_the_described_shapes(tmp_path):
    path = synthetic.generate(tmp_path, 30, seed=1, image_size=64)
    for entry in json.loads(path.read_text())["images"]:
        pixels = np.asarray(Image.open(tmp_path / entry["filepath"] / entry["filename"]), dtype=float)
        assert np.abs(pixels[1, 1] - synthetic.get_preset("shapes").background).max() < 20  # plain background in the corner
        for shape in entry["scene"]["shapes"]:
            x, y = (round(v) for v in shape["centre"])
            assert np.abs(pixels[y, x] - synthetic.PALETTE[shape["colour"]]).max() < 40
        first, *rest = entry["scene"]["shapes"]
        if entry["scene"]["layout"] == "horizontal":
            assert first["centre"][0] < rest[0]["centre"][0] and "left of" in entry["sentences"][0]["raw"]
        if entry["scene"]["layout"] == "vertical":
            assert first["centre"][1] < rest[0]["centre"][1] and "above" in entry["sentences"][0]["raw"]


def test_prepare_karpathy_on_synthetic(tmp_path):
    path = synthetic.generate(tmp_path / "syn", 20, seed=0, image_size=64)
    manifest = prepare.run(["karpathy", "--json", path, "--out", tmp_path / "out", "--image-size", 48,
                            "--min-word-freq", 1, "--workers", 1, "--shard-size", 8])
    assert {s: e["images"] for s, e in manifest["splits"].items()} == {"train": 16, "val": 2, "test": 2}
    samples = read_shards(tmp_path / "out")
    assert len(samples) == 20 and all(s["jpg"].size == (48, 48) for s in samples.values())
    assert all(len(s["json"]["captions"]) == 5 for s in samples.values())
