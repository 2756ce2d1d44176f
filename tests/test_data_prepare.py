"""prepare: every source format -> shards -> captions and pixels come back; counts match; train-only vocabulary."""
import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_pipelines import prepare

# image_id -> (split, captions). "zebra" appears only in val and "quokka" only in test: never in the vocabulary.
SPEC = {
    "img0": ("train", ["A red ball on the grass.", "A ball, red and round!"]),
    "img1": ("train", ["A dog runs on the grass.", "The dog is running."]),
    "img2": ("train", ["A red dog.", "A dog near a ball"]),
    "img3": ("train", ["Grass and a ball.", "The ball is red."]),
    "img4": ("val", ["A zebra on the grass."]),
    "img5": ("test", ["A quokka with a ball.", "The quokka smiles."]),
}
IMAGE_SIZE = 32


def make_image(path: Path, seed: int, size=(48, 40)) -> Image.Image:
    """A smooth random RGB image (so JPEG round trips stay pixel-close), saved as PNG or JPEG by suffix."""
    blocks = np.random.default_rng(seed).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize(size, Image.Resampling.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return image


def make_images(folder: Path, suffix=".png") -> dict[str, Image.Image]:
    return {image_id: make_image(folder / f"{image_id}{suffix}", seed) for seed, image_id in enumerate(SPEC)}


def read_shards(out: Path) -> dict[str, dict]:
    """key -> {"split", "shard", "json", "image"} from every tar in ``out`` (plain tarfile)."""
    samples = {}
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                key, extension = member.name.split(".", 1)
                sample = samples.setdefault(key, {"split": shard.name.split("-")[0], "shard": shard.name})
                payload = tar.extractfile(member).read()
                sample[extension] = json.loads(payload) if extension == "json" else Image.open(io.BytesIO(payload))
    return samples


def resized(image: Image.Image, size: int) -> Image.Image:
    scale = size / min(image.size)
    if scale >= 1:
        return image.convert("RGB")
    return image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)),
                                       Image.Resampling.BICUBIC)


def check_round_trip(out: Path, originals: dict[str, Image.Image], spec=SPEC) -> dict:
    """Captions, pixels, sizes, counts and the vocabulary of a prepared ``out`` match ``spec``."""
    samples = read_shards(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(samples) == sorted(spec)
    for image_id, (split, captions) in spec.items():
        sample = samples[image_id]
        assert sample["split"] == split
        assert sample["json"]["captions"] == captions and sample["json"]["image_id"] == image_id
        original = originals[image_id]
        assert (sample["json"]["width"], sample["json"]["height"]) == original.size
        assert sample["jpg"].mode == "RGB" and sample["jpg"].format == "JPEG"
        expected = np.asarray(resized(original, manifest["image_size"]), dtype=np.float64)
        assert np.abs(np.asarray(sample["jpg"], dtype=np.float64) - expected).mean() < 6
    for split, entry in manifest["splits"].items():
        in_split = [s for s in samples.values() if s["split"] == split]
        assert entry["images"] == len(in_split) == sum(entry["shard_sizes"].values())
        assert entry["captions"] == sum(len(s["json"]["captions"]) for s in in_split)
        assert sorted(entry["shards"]) == sorted({s["shard"] for s in in_split})
    words = json.loads((out / "vocab.json").read_text())["words"]
    assert {"red", "ball", "dog", "grass"} <= set(words)
    assert "zebra" not in words and "quokka" not in words
    assert manifest["vocab_size"] == len(words) + 4
    return manifest


def run(source_args, out, *extra):
    return prepare.run([*source_args, "--out", out, "--image-size", IMAGE_SIZE, "--shard-size", 2,
                        "--min-word-freq", 1, "--workers", 1, *extra])


def write_karpathy(root: Path) -> Path:
    entries = []
    for index, (image_id, (split, captions)) in enumerate(SPEC.items()):
        entry = {"filename": f"{image_id}.png", "imgid": index, "split": "restval" if index == 3 else split,
                 "sentences": [{"raw": caption, "tokens": []} for caption in captions]}
        if index % 2:
            entry["filepath"] = "."
        entries.append(entry)
    path = root / "dataset_test.json"
    path.write_text(json.dumps({"dataset": "test", "images": entries}))
    return path


def test_karpathy_round_trip(tmp_path):
    originals = make_images(tmp_path / "src")
    path = write_karpathy(tmp_path / "src")
    manifest = run(["karpathy", "--json", path], tmp_path / "out")
    check_round_trip(tmp_path / "out", originals)
    assert manifest["source"]["kind"] == "karpathy" and manifest["splits"]["train"]["images"] == 4
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["skipped"] == stats["converted"] == stats["dropped_captions"] == []


def test_coco_round_trip_with_split_files_and_image_folders(tmp_path):
    for split in ("train", "val", "test"):
        images, annotations = [], []
        for number, (image_id, (image_split, captions)) in enumerate(SPEC.items()):
            if image_split != split:
                continue
            make_image(tmp_path / split / f"{number:012d}.jpg", number)
            images.append({"id": image_id, "file_name": f"{number:012d}.jpg"})
            annotations += [{"id": len(annotations), "image_id": image_id, "caption": c} for c in captions]
        (tmp_path / f"captions_{split}.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    originals = {k: Image.open(tmp_path / SPEC[k][0] / f"{n:012d}.jpg") for n, k in enumerate(SPEC)}  # JPEG pixels
    run(["coco", "--annotations", *(f"{s}={tmp_path}/captions_{s}.json" for s in ("train", "val", "test")),
         "--images", *(f"{s}={tmp_path / s}" for s in ("train", "val", "test"))], tmp_path / "out")
    check_round_trip(tmp_path / "out", originals)


def test_coco_single_file_gets_a_deterministic_fraction_split(tmp_path):
    make_images(tmp_path / "images", suffix=".jpg")
    images = [{"id": image_id, "file_name": f"{image_id}.jpg"} for image_id in SPEC]
    annotations = [{"id": i, "image_id": image_id, "caption": "A thing."} for i, image_id in enumerate(SPEC)]
    (tmp_path / "captions.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    args = ["coco", "--annotations", tmp_path / "captions.json", "--images", tmp_path / "images",
            "--val-fraction", "0.34", "--test-fraction", "0.17"]
    first = run(args, tmp_path / "out1")
    second = run(args, tmp_path / "out2")
    assert {s: e["images"] for s, e in first["splits"].items()} == {"train": 3, "val": 2, "test": 1}
    assert second["splits"] == first["splits"]
    assert read_shards(tmp_path / "out1").keys() == read_shards(tmp_path / "out2").keys()
    assert {k: v["split"] for k, v in read_shards(tmp_path / "out1").items()} == \
           {k: v["split"] for k, v in read_shards(tmp_path / "out2").items()}


def test_flickr_round_trip(tmp_path):
    originals = make_images(tmp_path / "Flicker8k_Dataset", suffix=".jpg")
    originals = {k: Image.open(tmp_path / "Flicker8k_Dataset" / f"{k}.jpg") for k in originals}
    lines = [f"{image_id}.jpg#{n}\t{caption}" for image_id, (_, caps) in SPEC.items() for n, caption in enumerate(caps)]
    (tmp_path / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    split_args = []
    for split, file_name in (("train", "trainImages"), ("val", "devImages"), ("test", "testImages")):
        names = [f"{image_id}.jpg" for image_id, (s, _) in SPEC.items() if s == split]
        (tmp_path / f"Flickr_8k.{file_name}.txt").write_text("\n".join(names) + "\n")
        split_args.append(f"{split}={tmp_path}/Flickr_8k.{file_name}.txt")
    run(["flickr", "--captions", tmp_path / "Flickr8k.token.txt", "--images", tmp_path / "Flicker8k_Dataset",
         "--splits", *split_args], tmp_path / "out")
    check_round_trip(tmp_path / "out", originals)


def test_csv_round_trip_one_row_per_caption(tmp_path):
    originals = make_images(tmp_path / "pics")
    with (tmp_path / "data.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "text", "subset"])
        for image_id, (split, captions) in SPEC.items():
            for caption in captions:
                writer.writerow([f"pics/{image_id}.png", caption, split])
    run(["csv", "--file", tmp_path / "data.csv", "--image-column", "file", "--caption-columns", "text",
         "--split-column", "subset", "--id-column", "file"], tmp_path / "out", "--workers", 2)
    spec = {f"pics_{image_id}_png": value for image_id, value in SPEC.items()}  # ids are cleaned: no dots/slashes
    check_round_trip(tmp_path / "out", {f"pics_{k}_png": image for k, image in originals.items()}, spec)


def test_jsonl_round_trip_with_caption_lists_and_images_folder(tmp_path):
    originals = make_images(tmp_path / "elsewhere")
    rows = [{"path": f"{image_id}.png", "id": image_id, "captions": captions[:1], "extra": captions[1:], "split": split}
            for image_id, (split, captions) in SPEC.items()]
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")
    run(["jsonl", "--file", tmp_path / "data.jsonl", "--image-column", "path", "--caption-columns", "captions",
         "extra", "--split-column", "split", "--id-column", "id", "--images", tmp_path / "elsewhere"], tmp_path / "out")
    check_round_trip(tmp_path / "out", originals)


def test_hf_dataset_dict_round_trip_with_pil_images(tmp_path):
    datasets = pytest.importorskip("datasets")
    originals = make_images(tmp_path / "pics")
    parts = {}
    for ours, theirs in (("train", "train"), ("val", "validation"), ("test", "test")):
        ids = [image_id for image_id, (split, _) in SPEC.items() if split == ours]
        parts[theirs] = datasets.Dataset.from_dict({
            "picture": [originals[i] for i in ids], "texts": [SPEC[i][1] for i in ids], "name": ids,
        }).cast_column("picture", datasets.Image())
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "hf"))
    run(["hf", "--dataset", tmp_path / "hf", "--image-column", "picture", "--caption-column", "texts",
         "--id-column", "name"], tmp_path / "out")
    check_round_trip(tmp_path / "out", originals)


def test_hf_single_dataset_with_path_column_and_split_column(tmp_path):
    datasets = pytest.importorskip("datasets")
    originals = make_images(tmp_path / "pics")
    ids = list(SPEC)
    datasets.Dataset.from_dict({
        "file": [f"{i}.png" for i in ids], "caption": [SPEC[i][1][0] for i in ids],
        "split": [SPEC[i][0] for i in ids]}).save_to_disk(str(tmp_path / "hf"))
    run(["hf", "--dataset", tmp_path / "hf", "--image-column", "file", "--split-column", "split",
         "--images", tmp_path / "pics"], tmp_path / "out")
    samples = read_shards(tmp_path / "out")
    assert sorted(s["json"]["captions"][0] for s in samples.values()) == sorted(SPEC[i][1][0] for i in ids)
    assert sorted(s["split"] for s in samples.values()) == sorted(SPEC[i][0] for i in ids)
    by_caption = {s["json"]["captions"][0]: s for s in samples.values()}
    for image_id in ids:
        got = np.asarray(by_caption[SPEC[image_id][1][0]]["jpg"], dtype=np.float64)
        assert np.abs(got - np.asarray(resized(originals[image_id], IMAGE_SIZE), dtype=np.float64)).mean() < 6


def test_output_is_identical_for_one_and_two_workers(tmp_path):
    make_images(tmp_path / "src")
    path = write_karpathy(tmp_path / "src")
    run(["karpathy", "--json", path], tmp_path / "one", "--workers", 1)
    run(["karpathy", "--json", path], tmp_path / "two", "--workers", 2)
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
