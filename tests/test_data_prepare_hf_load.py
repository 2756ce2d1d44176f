"""``prepare hf --dataset NAME``: datasets.load_dataset sources, offline (HF_DATASETS_OFFLINE=1, set by conftest): a
script-free local parquet folder, an imagefolder with captions, and a name that is not available offline."""
import json
import os
import tarfile
from pathlib import Path

import datasets
import pytest
from PIL import Image

from data_pipelines import prepare
from data_pipelines.sources.common import DataFormatError

COLOURS = {"red": (220, 20, 20), "blue": (20, 20, 220), "green": (20, 200, 20)}


def written(out: Path) -> dict[str, dict[str, list[str]]]:
    """split -> image_id -> captions of a prepared dataset."""
    result = {}
    for split, entry in json.loads((out / "manifest.json").read_text())["splits"].items():
        for name in entry["shards"]:
            with tarfile.open(out / name) as tar:
                for member in tar:
                    if member.name.endswith(".json"):
                        meta = json.loads(tar.extractfile(member).read())
                        result.setdefault(split, {})[meta["image_id"]] = meta["captions"]
    return result


def run(tmp_path: Path, *arguments) -> dict:
    prepare.run(["hf", *arguments, "--out", tmp_path / "out", "--image-size", 32, "--min-word-freq", 1, "--workers", 1,
                 "--cache-dir", tmp_path / "hf-cache"])
    return written(tmp_path / "out")


def test_offline_mode_is_on():
    assert os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_local_parquet_folder_through_load_dataset(tmp_path):
    folder = tmp_path / "parquet"
    folder.mkdir()
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string"),
                                  "id": datasets.Value("string")})
    for split, names in (("train", ["red", "blue"]), ("validation", ["green"])):
        rows = {"image": [Image.new("RGB", (40, 40), COLOURS[name]) for name in names],
                "caption": [f"a {name} square" for name in names], "id": names}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(folder / f"{split}.parquet"))
    assert run(tmp_path, "--dataset", folder, "--id-column", "id") == {
        "train": {"red": ["a red square"], "blue": ["a blue square"]}, "val": {"green": ["a green square"]}}


def test_imagefolder_with_captions(tmp_path):
    folder = tmp_path / "images"
    (folder / "train").mkdir(parents=True)
    for name in ("red", "blue"):
        Image.new("RGB", (40, 40), COLOURS[name]).save(folder / "train" / f"{name}.png")
    (folder / "train" / "metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": f"{name}.png", "text": f"a {name} square"}) + "\n" for name in ("red", "blue")))
    found = run(tmp_path, "--dataset", "imagefolder", "--data-dir", folder, "--caption-column", "text")
    assert sorted(captions for captions in found["train"].values()) == [["a blue square"], ["a red square"]]


def test_name_unavailable_offline_is_a_one_line_error(tmp_path):
    with pytest.raises(DataFormatError, match="--dataset nobody/no-such-captions: not a save_to_disk folder") as error:
        run(tmp_path, "--dataset", "nobody/no-such-captions")
    assert "\n" not in str(error.value)
