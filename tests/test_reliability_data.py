"""Issue 9, data side: each row is a case that lost work, hung or gave a wrong result, and the test that pins the fix.

| item | what went wrong | what happens now | test |
|---|---|---|---|
| 3 | `prepare ... --out S --overwrite` with S the images/JSON folder deleted the inputs; `features --data P --out P --overwrite` replaced the shards | any `--out` that is, or holds, an input (file, folder, listed image) is refused before any work; nothing is deleted | `test_prepare_refuses_an_out_that_is_or_holds_an_input`, `test_features_refuses_an_out_that_is_its_data` |
| 5 | when no sample of a worker's shards decodes, the guard counted raw samples: endless loop, millions of warnings | a pass over the shards that decodes nothing raises an error naming them; warnings are rate-limited; `BrokenSampleCounter.take()` gives the per-interval count | `test_undecodable_shards_stop_with_an_error_naming_them`, `test_broken_sample_warnings_are_rate_limited_and_counted` |
| 8 | EXIF orientation ignored: phone photos trained sideways | prepare turns images upright (`ImageOps.exif_transpose`), records it in stats.json | `test_prepare_applies_exif_orientation_and_records_it` |
| 9 | `cocoid: null` everywhere collapsed every image to id "None", exit 0 | a missing id falls back to the file name; two different images with one id is an error | `test_null_ids_fall_back_to_the_file_name`, `test_two_images_with_one_id_is_an_error` |
| 10 | a lone surrogate in a caption crashed prepare with a traceback; any Pillow format was opened; a missing shard failed with a traceback only once training started | one-line error naming image and caption; formats limited to the ones we read (others skipped, reason in stats.json); `check_splits` names a missing shard or split at set-up | `test_lone_surrogate_caption_is_a_one_line_error`, `test_prepare_skips_formats_we_do_not_read`, `test_check_splits_names_a_missing_shard_or_split` |
"""
from __future__ import annotations

import io
import json
import logging
import signal
import tarfile
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image, ImageOps
from test_data_prepare import make_image, read_shards
from test_data_stream import captions_for, write_dataset

from data_pipelines import prepare
from data_pipelines.features import main as features_main
from data_pipelines.sources import DataFormatError
from data_pipelines.stream import TrainLoaderOptions
from data_pipelines.stream_samples import BrokenSampleCounter
from data_pipelines.train_stream import build_lane_loader
from data_pipelines.vocab import Vocabulary


def karpathy_json(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"images": entries}), encoding="utf-8")
    return path


def entry(filename: str, captions=("A red ball.",), split="train", **extra) -> dict:
    return {"filename": filename, "split": split, "sentences": [{"raw": c} for c in captions], **extra}


def small_source(root: Path) -> Path:
    """root/dataset.json + root/images/img{0,1,2}.png."""
    for index in range(3):
        make_image(root / "images" / f"img{index}.png", index)
    return karpathy_json(root / "dataset.json", [{**entry(f"img{i}.png"), "filepath": "images"} for i in range(3)])


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# item 3
@pytest.mark.parametrize("out_of", [lambda root: root, lambda root: root / "images"])
def test_prepare_refuses_an_out_that_is_or_holds_an_input(tmp_path, out_of, capsys):
    source = tmp_path / "S"
    path = small_source(source)
    before = tree(source)
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["karpathy", "--json", path, "--out", out_of(source), "--overwrite", "--workers", 1,
                      "--min-word-freq", 1])
    assert "holds no input" in str(exit_info.value) and "--overwrite would delete" in str(exit_info.value)
    assert tree(source) == before  # not one input file touched


def test_prepare_allows_an_out_inside_the_image_folder(tmp_path):
    path = small_source(tmp_path / "S")
    manifest = prepare.run(["karpathy", "--json", path, "--out", tmp_path / "S" / "prepared", "--workers", 1,
                            "--min-word-freq", 1])
    assert manifest["splits"]["train"]["images"] == 3


def test_features_refuses_an_out_that_is_its_data(tmp_path):
    data = write_dataset(tmp_path / "P", {"train": [2]})
    before = tree(data)
    with pytest.raises(SystemExit) as exit_info:
        features_main(["--data", str(data), "--out", str(data), "--overwrite", "--weights", "none", "--image-size", "32"])
    assert exit_info.value.code == 2
    assert tree(data) == before


# item 5
def write_undecodable_dataset(root: Path, shards: int = 2, per_shard: int = 3) -> Path:
    """Readable tar shards whose samples all fail to decode (no captions)."""
    root.mkdir(parents=True)
    names = []
    for shard in range(shards):
        names.append(f"train-{shard:06d}.tar")
        with wds.TarWriter(str(root / names[-1])) as writer:
            for index in range(per_shard):
                key = f"s{shard}_{index}"
                writer.write({"__key__": key, "jpg": b"\xff\xd8 not a jpeg", "json": json.dumps({"captions": []}).encode()})
    manifest = {"splits": {"train": {"shards": names, "images": shards * per_shard, "captions": 0}}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


class StillRunning(BaseException):
    """Not an Exception: the stream's skip-and-count handlers must not swallow it."""


@pytest.fixture()
def alarm():
    """Fail (instead of hanging) when the code under test does not return within the given seconds."""
    def expire(*_):
        raise StillRunning("still running after the alarm: the stream loops instead of stopping")
    previous = signal.signal(signal.SIGALRM, expire)
    yield lambda seconds: signal.alarm(seconds)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_undecodable_shards_stop_with_an_error_naming_them(tmp_path, alarm):
    data = write_undecodable_dataset(tmp_path / "data")
    options = TrainLoaderOptions(batch_size=2, num_workers=0, image_size=32)
    loader = build_lane_loader(data, Vocabulary(["red"]), options, global_batch_size=2, lanes=range(1))
    alarm(60)
    with pytest.raises(RuntimeError, match=r"a whole pass over shards .*train-00000[01]\.tar.*train-00000[01]\.tar.* "
                                           r"decoded nothing"):
        next(iter(loader))
    assert loader.broken_samples == 12  # two passes of 6: the one reading starts in (mid-pass on resume), one more


def test_broken_sample_warnings_are_rate_limited_and_counted(caplog):
    counter = BrokenSampleCounter(log_first=3)
    with caplog.at_level(logging.WARNING, logger="data_pipelines.stream_samples"):
        for index in range(1500):
            counter(ValueError(f"sample {index}"))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3 + 3  # three one by one, then the count at 4, 100 and 1000
    assert messages[3].startswith("4 broken samples skipped") and messages[-1].startswith("1000 broken samples")
    assert counter.count == 1500 and counter.take() == 1500 and counter.take() == 0
    counter(ValueError("one more"))
    assert counter.take() == 1


def test_a_shared_counter_spans_the_loaders_of_several_epochs(tmp_path):
    data = write_dataset(tmp_path / "data", {"train": [3, 3]})
    with tarfile.open(data / "train-000000.tar") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    with tarfile.open(data / "train-000000.tar", "w") as tar:  # one sample's json replaced by garbage
        for member, payload in members:
            payload = b"{broken" if member.name == "img0000.json" else payload
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
    vocab = Vocabulary.build(captions_for(0), min_freq=1)
    counter = BrokenSampleCounter()
    for epoch in range(2):
        loader = build_lane_loader(data, vocab, TrainLoaderOptions(batch_size=2, num_workers=0, image_size=32),
                                   global_batch_size=2, lanes=range(1), epoch=epoch, broken=counter)
        assert len(list(loader)) == len(loader)
    assert counter.take() >= 2  # the broken sample, once per epoch, in one counter


# item 8
def test_prepare_applies_exif_orientation_and_records_it(tmp_path):
    stored = np.zeros((40, 60, 3), dtype=np.uint8)  # 60 wide, 40 high as stored: red left half, blue right half
    stored[:, :30, 0] = 255
    stored[:, 30:, 2] = 255
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    (tmp_path / "images").mkdir()
    image.save(tmp_path / "images" / "phone.jpg", quality=95, exif=exif.tobytes())
    path = karpathy_json(tmp_path / "dataset.json", [{**entry("phone.jpg"), "filepath": "images"}])
    prepare.run(["karpathy", "--json", path, "--out", tmp_path / "out", "--workers", 1, "--min-word-freq", 1,
                 "--image-size", 200])
    sample = read_shards(tmp_path / "out")["phone"]
    expected = ImageOps.exif_transpose(Image.open(tmp_path / "images" / "phone.jpg")).convert("RGB")
    assert expected.size == (40, 60) and sample["jpg"].size == (40, 60)
    assert (sample["json"]["width"], sample["json"]["height"]) == (40, 60)
    difference = np.abs(np.asarray(sample["jpg"], dtype=float) - np.asarray(expected, dtype=float)).mean()
    assert difference < 6  # the upright pixels, not the stored ones
    assert sample["jpg"].getexif().get(0x0112) is None  # no tag left to rotate it a second time
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert [(e["image_id"], e["orientation"]) for e in stats["converted"]] == [("phone", 6)]
    assert stats["reasons"] == {"turned upright (EXIF orientation)": 1} and "exif_orientation" in stats


# item 9
def test_null_ids_fall_back_to_the_file_name(tmp_path):
    for index in range(3):
        make_image(tmp_path / f"photo{index}.png", index)
    path = karpathy_json(tmp_path / "dataset.json", [entry(f"photo{i}.png", cocoid=None) for i in range(3)])
    manifest = prepare.run(["karpathy", "--json", path, "--out", tmp_path / "out", "--workers", 1, "--min-word-freq", 1])
    assert manifest["splits"]["train"]["images"] == 3
    assert sorted(read_shards(tmp_path / "out")) == ["photo0", "photo1", "photo2"]


def test_two_images_with_one_id_is_an_error(tmp_path):
    for index in range(2):
        make_image(tmp_path / f"photo{index}.png", index)
    path = karpathy_json(tmp_path / "dataset.json", [entry(f"photo{i}.png", cocoid=7) for i in range(2)])
    with pytest.raises(DataFormatError, match=r"image id '7' is given to two different images: .*photo0\.png and "
                                              r".*photo1\.png"):
        prepare.run(["karpathy", "--json", path, "--out", tmp_path / "out", "--workers", 1])
    assert not (tmp_path / "out").exists()


# item 10
def test_lone_surrogate_caption_is_a_one_line_error(tmp_path):
    make_image(tmp_path / "a.png", 0)
    (tmp_path / "dataset.json").write_text('{"images": [{"filename": "a.png", "split": "train", '
                                           '"sentences": [{"raw": "fine"}, {"raw": "bad \\ud800 text"}]}]}')
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["karpathy", "--json", str(tmp_path / "dataset.json"), "--out", str(tmp_path / "out"),
                      "--workers", "1"])
    message = str(exit_info.value)
    assert message.startswith("error: ") and "\n" not in message
    assert "image 'a', caption 1" in message and "lone surrogate" in message
    assert not (tmp_path / "out").exists()


def test_prepare_skips_formats_we_do_not_read(tmp_path):
    make_image(tmp_path / "ok.png", 0)
    Image.new("RGB", (40, 30), "red").save(tmp_path / "odd.tga")
    path = karpathy_json(tmp_path / "dataset.json", [entry("ok.png"), entry("odd.tga")])
    prepare.run(["karpathy", "--json", path, "--out", tmp_path / "out", "--workers", 1, "--min-word-freq", 1])
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["written"] == {"train": 1}
    [skipped] = stats["skipped"]
    assert skipped["image_id"] == "odd" and "not an image in a format we read (JPEG, PNG" in skipped["detail"]


def test_check_splits_names_a_missing_shard_or_split(tmp_path):
    from data_pipelines.stream import check_splits  # imported here: the rest of this file also runs on older code

    data = write_dataset(tmp_path / "data", {"train": [2, 2], "val": [2]})
    check_splits(data, ["train", "val"])
    with pytest.raises(ValueError, match=r"manifest\.json: no split 'test' \(has \['train', 'val'\]\)"):
        check_splits(data, ["train", "test"])
    (data / "train-000001.tar").unlink()
    with pytest.raises(FileNotFoundError, match=r"splits\.train lists shard\(s\) missing .*train-000001\.tar"):
        check_splits(data, ["val"])
