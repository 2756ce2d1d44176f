"""prepare with bad inputs: every skipped/converted/dropped input is in stats.json, the rest is intact;
malformed annotation files give a clear error naming file and position."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from test_data_prepare import make_image, read_shards

from data_pipelines import image_conversion, prepare
from data_pipelines.sources import DataFormatError


def write_bad_inputs(root):
    """Images of every bad kind plus two good ones; returns the Karpathy JSON path."""
    images = root / "images"
    make_image(images / "good1.jpg", 1)
    make_image(images / "good2.png", 2)
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    noisy.save(images / "full.jpg", quality=95)
    data = (images / "full.jpg").read_bytes()
    (images / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (images / "full.jpg").unlink()
    (images / "corrupt.jpg").write_bytes(b"definitely not an image " * 20)
    (images / "zero.jpg").write_bytes(b"")
    Image.new("CMYK", (40, 36), (0, 255, 255, 0)).save(images / "cmyk.jpg")
    Image.new("L", (40, 36), 77).save(images / "grey.png")
    rgba = Image.new("RGBA", (40, 36), (0, 0, 255, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 20, 36))
    rgba.save(images / "rgba.png")
    Image.fromarray(np.full((36, 40), 40000, dtype=np.uint16)).save(images / "grey16.png")
    captions = {"good1": ["A good one."], "good2": ["", "Another good one."], "missing": ["Gone."],
                "truncated": ["Cut."], "corrupt": ["Noise."], "zero": ["Empty."], "cmyk": ["Print colours."],
                "grey": ["Grey."], "rgba": ["See through."], "grey16": ["Deep grey."], "nocaps": [],
                "allempty": ["   "]}
    suffix = {"good2": ".png", "grey": ".png", "rgba": ".png", "grey16": ".png"}
    entries = [{"filepath": "images", "filename": name + suffix.get(name, ".jpg"), "split": "train",
                "sentences": [{"raw": caption} for caption in caps]} for name, caps in captions.items()]
    entries.append(dict(entries[0]))  # the same image listed twice
    path = root / "dataset.json"
    path.write_text(json.dumps({"images": entries}))
    return path


def test_bad_inputs_are_listed_in_stats_and_the_rest_is_intact(tmp_path):
    path = write_bad_inputs(tmp_path)
    out = tmp_path / "out"
    manifest = prepare.run(["karpathy", "--json", path, "--out", out, "--image-size", 32, "--min-word-freq", 1,
                            "--workers", 2, "--shard-size", 3])
    stats = json.loads((out / "stats.json").read_text())
    skipped = {entry["image_id"]: entry["reason"] for entry in stats["skipped"]}
    assert set(skipped) == {"missing", "truncated", "corrupt", "zero", "nocaps", "allempty", "good1"}
    assert skipped["missing"] == "missing image file" and skipped["zero"] == "zero-byte image file"
    assert "truncated" in skipped["truncated"] and "corrupt" in skipped["corrupt"]
    assert skipped["nocaps"] == skipped["allempty"] == "no captions" and "duplicate" in skipped["good1"]
    converted = {entry["image_id"]: entry["reason"] for entry in stats["converted"]}
    assert converted.keys() == {"cmyk", "grey", "rgba", "grey16"}
    assert "CMYK" in converted["cmyk"] and "16-bit" in converted["grey16"] and "alpha" in converted["rgba"]
    assert [(d["image_id"], d["caption_index"]) for d in stats["dropped_captions"]] == [("good2", 0), ("allempty", 0)]
    assert stats["num_skipped"] == 7 and stats["written"] == {"train": 6}

    samples = read_shards(out)
    assert sorted(samples) == ["cmyk", "good1", "good2", "grey", "grey16", "rgba"]
    assert manifest["splits"]["train"]["images"] == 6 and manifest["splits"]["train"]["captions"] == 6
    assert samples["good2"]["json"]["captions"] == ["Another good one."]
    for sample in samples.values():
        assert sample["jpg"].mode == "RGB"
    assert abs(np.asarray(samples["grey16"]["jpg"], dtype=float).mean() - 40000 / 257) < 3  # scaled, not clipped
    assert abs(np.asarray(samples["grey"]["jpg"], dtype=float).mean() - 77) < 3
    rgba = np.asarray(samples["rgba"]["jpg"], dtype=float)
    assert rgba[:, :8, 0].mean() > 230 and rgba[:, :8, 1:].mean() < 30  # opaque red half stays red
    assert rgba[:, -8:].mean() > 240  # transparent half composited on white
    assert not list(tmp_path.glob(".out*")), "temporary folders must be gone"


def test_convert_image_reports_instead_of_raising(tmp_path):
    assert image_conversion.convert_image(str(tmp_path / "nope.jpg"), 32, 95) == {"error": "missing image file"}
    assert image_conversion.convert_image(b"", 32, 95) == {"error": "zero-byte image file"}
    assert "corrupt" in image_conversion.convert_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 50, 32, 95)["error"]
    make_image(tmp_path / "a.jpg", 0, size=(80, 40))
    result = image_conversion.convert_image(str(tmp_path / "a.jpg"), 32, 95)
    assert (result["width"], result["height"], result["note"]) == (80, 40, None)


def _karpathy(tmp_path, text):
    path = tmp_path / "dataset.json"
    path.write_text(text)
    return ["karpathy", "--json", path]


@pytest.mark.parametrize("make_args, message", [
    (lambda t: _karpathy(t, '{"images": [\n {"filename": "a.jpg",,}]}'), r"dataset\.json: invalid JSON at line 2, column"),
    (lambda t: _karpathy(t, '{"imgs": []}'), r"dataset\.json: the top level has no key 'images'"),
    (lambda t: _karpathy(t, json.dumps({"images": [{"filename": "a.jpg", "split": "train", "sentences": []},
                                                   {"filename": "b.jpg", "split": "train"}]})),
     r"dataset\.json: images\[1\] has no key 'sentences'"),
    (lambda t: _karpathy(t, json.dumps({"images": [{"filename": "a.jpg", "split": "train",
                                                    "sentences": [{"raw": 5}]}]})),
     r"images\[0\]\['sentences'\]\[0\]\['raw'\] must be str, got int 5"),
    (lambda t: _karpathy(t, json.dumps({"images": [{"filename": "a.jpg", "split": "Train!", "sentences": []}]})),
     r"split 'Train!'"),
])
def test_malformed_karpathy_file_names_file_and_position(tmp_path, make_args, message):
    with pytest.raises(DataFormatError, match=message):
        prepare.run([*make_args(tmp_path), "--out", tmp_path / "out"])
    assert not (tmp_path / "out").exists()


def test_malformed_coco_flickr_and_tabular_files(tmp_path):
    (tmp_path / "coco.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                                                    "annotations": [{"image_id": 1, "caption": "x"}, {"image_id": 1}]}))
    with pytest.raises(DataFormatError, match=r"coco\.json: annotations\[1\] has no key 'caption'"):
        prepare.run(["coco", "--annotations", tmp_path / "coco.json", "--images", tmp_path, "--out", tmp_path / "o"])
    (tmp_path / "tokens.txt").write_text("a.jpg#0\tA cat.\na.jpg A dog.\n")
    with pytest.raises(DataFormatError, match=r"tokens\.txt: line 2: expected 'IMAGE#N<TAB>caption'"):
        prepare.run(["flickr", "--captions", tmp_path / "tokens.txt", "--images", tmp_path, "--out", tmp_path / "o"])
    (tmp_path / "rows.jsonl").write_text('{"image": "a.jpg", "caption": "x"}\n{"image": "b.jpg", "caption": \n')
    with pytest.raises(DataFormatError, match=r"rows\.jsonl: line 2, column \d+: invalid JSON"):
        prepare.run(["jsonl", "--file", tmp_path / "rows.jsonl", "--out", tmp_path / "o"])
    (tmp_path / "rows.csv").write_text("image,text\na.jpg,A cat.\n")
    with pytest.raises(DataFormatError, match=r"rows\.csv: line 2: no column 'caption' \(columns: image, text\)"):
        prepare.run(["csv", "--file", tmp_path / "rows.csv", "--out", tmp_path / "o"])
    assert not (tmp_path / "o").exists()


def test_cli_exits_with_a_clear_message(tmp_path):
    (tmp_path / "dataset.json").write_text('{"images": [}')
    result = subprocess.run([sys.executable, "-m", "data_pipelines.prepare", "karpathy", "--json",
                             str(tmp_path / "dataset.json"), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "error:" in result.stderr and "dataset.json: invalid JSON at line 1, column 13" in result.stderr
    assert not (tmp_path / "out").exists()
