"""Issue 22, data side: datasets, manifests, shards and configs from elsewhere (docs/reliability.md), case by case.

| case | what went wrong | what happens now | test |
|---|---|---|---|
| S6 | a manifest shard named `pipe:touch PWNED; cat test-000000.tar` ran the command (webdataset runs `pipe:` names) | `read_manifest` (every shard reader's way in) checks each name with `check_shard_name`: a plain `.tar` file name, else a one-line error naming manifest.json, the key and the value | `test_hostile_shard_names_are_refused_naming_the_key`, `test_no_reader_runs_a_pipe_shard_name` |
| S5 | shards named `/abs/victim.tar` or `../victim.tar`: `data_pipelines.features` truncated, then deleted both files | refused by the same check before any file is opened | `test_features_never_touches_files_outside_its_output` |
| S7 | a Karpathy `filepath` of `../..`, an absolute `filename`, a symlink out of `--images`: prepare packed those files | refused (one line naming file, entry, path) unless `--allow-images-outside` | `test_image_paths_outside_the_image_folder_are_refused` |
| S9 | YAML "billion laughs": MemoryError after 14 s; `!!python/object`: traceback | aliases refused, tags refused: one line naming the file, line and column | `test_yaml_aliases_and_python_tags_are_one_line_errors` |
| S4 | symlink/hardlink tar members: KeyError tracebacks in `--report` (gallery) and baselines | link members are skipped (one WARNING per shard), as the stream skips them | `test_link_members_are_skipped_by_baselines_report_and_stream` |
| D4 | `--min-word-freq 100000`: a vocabulary of no words, trained on `<unk>` | refused before any image is converted, naming the most frequent word and its count | `test_a_vocabulary_without_words_is_refused_before_converting` |
| D9 D10 D10b | `--image-size 0/-5` stored 1x1 images; `--max-caption-len 0/-1` an empty vocabulary / a dropped word; `--min-word-freq 0` failed after converting everything | every size, length and frequency is checked before the annotations are read | `test_impossible_options_are_refused_before_anything_is_read` |
| D5 D5b | one file under two ids in train and test, one id in two splits: silent | a WARNING naming the ids and splits; stats.json `duplicate_images` lists every file written twice | `test_leakage_and_split_conflicts_are_warned_about` |
| D11 | two truncated test JPEGs: evaluate exited 0 scored on 2 of 4 images without a word | a WARNING "scored 2 of 4 images ..." and the count in the summary line | `test_evaluate_says_how_many_images_it_scored` |
| D12 | test ids `7`, `007`, `0007` all written as `image_id 7`: baselines scored the wrong captions | only plainly written integers become ints; every id stays distinct | `test_ids_that_differ_only_in_leading_zeros_stay_distinct` |
| BOM | a CSV saved with a byte-order mark: "no column 'image'" | read as utf-8-sig | `test_a_csv_with_a_byte_order_mark_is_read` |
| human | baselines on a split with one reference per image failed | the human row is null, with a note (the report leaves it out) | `test_baselines_skip_the_human_row_with_one_reference` |
| log | `--report` with a torn last train_log line: traceback | a cut-short last line is dropped with a WARNING; a bad middle line is an error naming file and line | `test_a_torn_last_train_log_line_is_tolerated` |
| worker | a prepare worker SIGKILLed: BrokenProcessPool traceback | one line saying a worker died and which images were in flight; nothing installed | `test_a_killed_prepare_worker_is_one_line_and_installs_nothing` |
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import tarfile
from pathlib import Path

import pytest
import webdataset as wds
from test_data_prepare import make_image, read_shards
from test_data_stream import write_dataset
from test_reliability_data import entry, karpathy_json

from data_pipelines import image_conversion, prepare
from data_pipelines.features import main as features_main
from data_pipelines.manifest import read_manifest
from data_pipelines.stream import TrainLoaderOptions, build_eval_loader
from data_pipelines.train_stream import build_lane_loader
from data_pipelines.vocab import Vocabulary
from trainer import evaluate_checkpoint as evaluate_cli
from trainer.config.schema import load_config
from trainer.evaluation.caption_baselines import caption_baselines, split_captions
from trainer.evaluation.coco_results import results_image_id
from trainer.evaluation.report.shard_images import split_images
from trainer.evaluation.report.train_log import read_train_log
from trainer.scst.df_cache import split_references

PIPE = "pipe:touch PWNED; cat test-000000.tar"
SHARD_ERROR = r"manifest\.json: splits\.test\.shards\[0\] is .*a shard must be a plain file name"


def set_shards(root: Path, names: list) -> Path:
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["splits"]["test"]["shards"] = names
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.mark.parametrize("name", [PIPE, "../outside.tar", "ABS", "sub/x.tar", "sub\\x.tar", "test.tar\n", "te\0st.tar",
                                  ".", "..", "", "-rf.tar", ".hidden.tar", "http://127.0.0.1:9/x.tar", "notes.txt",
                                  "file:test-000000.tar", 7, None])
def test_hostile_shard_names_are_refused_naming_the_key(tmp_path, name):
    root = write_dataset(tmp_path / "data", {"test": [2]})
    name = str(tmp_path / "abs.tar") if name == "ABS" else name
    for existing in (tmp_path / "outside.tar", tmp_path / "abs.tar", root / "sub" / "x.tar", root / "sub\\x.tar",
                     root / "test.tar\n", root / "-rf.tar", root / ".hidden.tar", root / "notes.txt", root / PIPE):
        existing.parent.mkdir(exist_ok=True)
        shutil.copy(root / "test-000000.tar", existing)  # the name reaches a real file: only the name check stops it
    set_shards(root, [name])
    with pytest.raises(ValueError, match=SHARD_ERROR) as error:
        read_manifest(root)
    assert "\n" not in str(error.value) and repr(name)[:40] in str(error.value)


READERS = {"eval stream": lambda: list(build_eval_loader(".", "test", batch_size=2, num_workers=0, image_size=32)),
           "train stream": lambda: list(build_lane_loader(".", Vocabulary(["a"]), TrainLoaderOptions(
               batch_size=1, num_workers=0, image_size=32, split="test"), global_batch_size=1, lanes=range(1))),
           "baselines": lambda: split_captions(Path("."), "test"),
           "report": lambda: list(split_images(Path("."), "test", ["img0000"])),
           "scst references": lambda: split_references(".", "test")}


@pytest.mark.parametrize("reader", READERS)
def test_no_reader_runs_a_pipe_shard_name(tmp_path, monkeypatch, reader):
    root = write_dataset(tmp_path / "data", {"test": [2]})
    shutil.copy(root / "test-000000.tar", root / PIPE)
    set_shards(root, [PIPE])
    monkeypatch.chdir(root)  # `--data .`: the shard path is the bare name, "pipe:..."
    with pytest.raises(ValueError, match=SHARD_ERROR):
        READERS[reader]()
    assert not (root / "PWNED").exists()


def test_features_never_touches_files_outside_its_output(tmp_path):
    root = write_dataset(tmp_path / "data", {"test": [2]})
    victims = [tmp_path / "victim.tar", tmp_path / "victim2.tar"]
    for victim in victims:
        victim.write_bytes(b"someone else's file")
    set_shards(root, [str(victims[0]), "../victim2.tar"])
    with pytest.raises(SystemExit) as exit_info:
        features_main(["--data", str(root), "--out", str(tmp_path / "feats"), "--weights", "none", "--image-size", "32"])
    assert exit_info.value.code == 2
    assert all(victim.read_bytes() == b"someone else's file" for victim in victims)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "victim.tar", "victim2.tar"]


@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink"])
def test_image_paths_outside_the_image_folder_are_refused(tmp_path, where, capsys):
    make_image(tmp_path / "src" / "images" / "ok.png", 0)
    secret = tmp_path / "private" / "secret.png"
    make_image(secret, 1)
    (tmp_path / "src" / "images" / "link.png").symlink_to(secret)
    outside = {"dotdot": {"filepath": "../private", "filename": "secret.png"},
               "absolute": {"filepath": "", "filename": str(secret)},
               "symlink": {"filepath": "images", "filename": "link.png"}}[where]
    path = karpathy_json(tmp_path / "src" / "dataset.json", [{**entry("ok.png"), "filepath": "images"},
                                                             {**entry("x"), **outside}])
    args = ["karpathy", "--json", path, "--out", tmp_path / "out", "--workers", 1, "--min-word-freq", 1]
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(args)
    message = str(exit_info.value)
    assert "dataset.json: images[1]: image path" in message and "leads outside the image folder" in message
    assert "--allow-images-outside" in message and "\n" not in message and not (tmp_path / "out").exists()
    manifest = prepare.run(args + ["--allow-images-outside"])  # the user says so: read it
    assert manifest["splits"]["train"]["images"] == 2


def test_yaml_aliases_and_python_tags_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcd", "bcde")]
    (tmp_path / "laughs.yaml").write_text("\n".join(lines + ["train: {max_steps: *e}"]) + "\n")
    (tmp_path / "tag.yaml").write_text('train: !!python/object/apply:os.system ["touch PWNED"]\n')
    for name, problem in (("laughs.yaml", "line 2, column 8: alias \\*a is not allowed"),
                          ("tag.yaml", "line 1, column 8: could not determine a constructor for the tag")):
        with pytest.raises(ValueError, match=f"{name}: {problem}") as error:
            load_config(tmp_path / name)
        assert len(str(error.value)) < 200 and "\n" not in str(error.value)
    assert not (tmp_path / "PWNED").exists()


def link_member_dataset(root: Path) -> Path:
    """A test shard: sample img0000 regular; img0001's .json a symlink, img0002's .jpg a hardlink (targets absent)."""
    root = write_dataset(root, {"test": [3]})
    with tarfile.open(root / "test-000000.tar") as tar:
        members = [(member, tar.extractfile(member).read()) for member in tar]
    with tarfile.open(root / "test-000000.tar", "w") as tar:
        for member, payload in members:
            if member.name in ("img0001.json", "img0002.jpg"):
                link = tarfile.TarInfo(member.name)
                link.type, link.linkname = (tarfile.SYMTYPE, "/etc/passwd") if "json" in member.name else \
                    (tarfile.LNKTYPE, "missing.jpg")
                tar.addfile(link)
            else:
                tar.addfile(member, io.BytesIO(payload))
    return root


def test_link_members_are_skipped_by_baselines_report_and_stream(tmp_path, caplog):
    root = link_member_dataset(tmp_path / "data")
    with caplog.at_level(logging.WARNING, logger="data_pipelines.shard_members"):
        assert sorted(split_captions(root, "test")) == ["img0000", "img0002"]
        assert [image_id for image_id, _ in split_images(root, "test", ["img0000", "img0001", "img0002"])] == ["img0000"]
    assert "skipped 1 member(s) that are links" in caplog.text and "img0001.json" in caplog.text
    loader = build_eval_loader(root, "test", batch_size=4, num_workers=0, image_size=32)
    assert [image_id for batch in loader for image_id in batch["image_id"]] == ["img0000"]


def small_source(root: Path, captions=("A red ball.",), splits=("train", "train", "test")) -> Path:
    for index in range(len(splits)):
        make_image(root / "images" / f"img{index}.png", index)
    return karpathy_json(root / "dataset.json", [{**entry(f"img{i}.png", captions, split), "filepath": "images"}
                                                 for i, split in enumerate(splits)])


def test_a_vocabulary_without_words_is_refused_before_converting(tmp_path, monkeypatch):
    path = small_source(tmp_path)
    monkeypatch.setattr(image_conversion, "convert_image", lambda *_: pytest.fail("an image was converted"))
    with pytest.raises(SystemExit, match=r"--min-word-freq 100000 leaves no word in the vocabulary: the most frequent "
                                         r"word of the train captions, '\w+', appears 2 time\(s\)"):
        prepare.main(["karpathy", "--json", path, "--out", tmp_path / "out", "--workers", 1, "--min-word-freq", 100000])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value, expected", [("--image-size", 0, ">= 1"), ("--image-size", -5, ">= 1"),
                                                   ("--max-caption-len", 0, ">= 1"), ("--max-caption-len", -1, ">= 1"),
                                                   ("--min-word-freq", 0, ">= 1"), ("--shard-size", 0, ">= 1"),
                                                   ("--workers", 0, ">= 1"), ("--jpeg-quality", 101, "between 1 and 100")])
def test_impossible_options_are_refused_before_anything_is_read(tmp_path, flag, value, expected):
    with pytest.raises(SystemExit) as exit_info:  # the annotation file does not even exist: it is never opened
        prepare.main(["karpathy", "--json", tmp_path / "missing.json", "--out", tmp_path / "out", flag, value])
    assert str(exit_info.value) == f"error: {flag} must be {expected}, got {value}"


def test_leakage_and_split_conflicts_are_warned_about(tmp_path, caplog):
    path = small_source(tmp_path, splits=("train", "test"))
    shutil.copy(tmp_path / "images" / "img0.png", tmp_path / "images" / "copy.png")  # img0's bytes as another id
    entries = json.loads(path.read_text())["images"]
    entries += [{**entries[0], "filename": "copy.png", "split": "test"}, {**entries[1], "split": "val"}]
    karpathy_json(path, entries)
    with caplog.at_level(logging.WARNING, logger="data_pipelines.prepare"):
        prepare.run(["karpathy", "--json", path, "--out", tmp_path / "out", "--workers", 1, "--min-word-freq", 1])
    assert "1 image file(s) are written under several ids in different splits" in caplog.text
    assert "'img0' (train) = 'copy' (test)" in caplog.text
    assert "1 image id(s) are listed in two splits; only the first listing is written: 'img1' (test, dropped from " \
           "val)" in caplog.text
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())["duplicate_images"]
    assert stats["num_files_in_several_splits"] == 1
    assert stats["files"][0]["images"] == [{"image_id": "img0", "split": "train"}, {"image_id": "copy", "split": "test"}]


def test_evaluate_says_how_many_images_it_scored(tiny_checkpoint, tmp_path, capsys):
    checkpoint, data, _ = tiny_checkpoint
    shutil.copytree(data, tmp_path / "data")
    shard = tmp_path / "data" / read_manifest(data)["splits"]["test"]["shards"][0]
    samples = list(wds.WebDataset(str(shard), shardshuffle=False))
    with wds.TarWriter(str(shard)) as writer:  # the first two test JPEGs cut short
        for index, sample in enumerate(samples):
            writer.write({**sample, "jpg": sample["jpg"][: len(sample["jpg"]) * 2 // 5] if index < 2 else sample["jpg"]})
    assert evaluate_cli.main(["--checkpoint", str(checkpoint), "--data", str(tmp_path / "data"), "--split", "test",
                              "--beam-size", "1", "--num-workers", "0", "--out", str(tmp_path / "results.json")]) == 0
    output = capsys.readouterr()
    assert "warning: scored 2 of 4 images of split 'test'" in output.err and "2 could not be read" in output.err
    assert "(2 of 4 images)" in output.out and len(json.loads((tmp_path / "results.json").read_text())) == 2


def test_ids_that_differ_only_in_leading_zeros_stay_distinct(tmp_path):
    assert [results_image_id(i) for i in ["7", "007", "0007", "0", "70", "\u0667"]] == \
        [7, "007", "0007", 0, 70, "\u0667"]
    captions = {"7": "A red ball.", "007": "A blue box.", "0007": "A green cat."}
    for index, image_id in enumerate(["train", *captions]):
        make_image(tmp_path / f"{index}.png", index)
    path = karpathy_json(tmp_path / "dataset.json", [entry("0.png", ["A dog.", "A dog!"], cocoid="train")] + [
        entry(f"{index}.png", [caption, "Something."], "test", cocoid=image_id)
        for index, (image_id, caption) in enumerate(captions.items(), start=1)])
    prepare.run(["karpathy", "--json", path, "--out", tmp_path / "out", "--workers", 1, "--min-word-freq", 1])
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": results_image_id(image_id), "caption": caption}
                                   for image_id, caption in captions.items()]))
    [gap] = caption_baselines(tmp_path / "out", "test", [results])["results"].values()
    assert gap["share_of_captions_that_are_references"] == 1.0  # each image got its own caption back


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path):
    make_image(tmp_path / "a.png", 0)
    (tmp_path / "data.csv").write_text("\ufeffimage,caption\na.png,A red ball.\n", encoding="utf-8")
    manifest = prepare.run(["csv", "--file", tmp_path / "data.csv", "--out", tmp_path / "out", "--workers", 1,
                            "--min-word-freq", 1])
    assert manifest["splits"]["train"]["images"] == 1 and read_shards(tmp_path / "out")["a"]["json"]["captions"] == [
        "A red ball."]


def test_baselines_skip_the_human_row_with_one_reference(tmp_path):
    prepare.run(["karpathy", "--json", small_source(tmp_path), "--out", tmp_path / "out", "--workers", 1,
                 "--min-word-freq", 1])
    result = caption_baselines(tmp_path / "out", "test")
    assert result["human"] is None and result["blind"]["CIDEr"] >= 0
    assert result["notes"] == ["no human row: every image of split 'test' has one reference (it needs two)"]


def test_a_torn_last_train_log_line_is_tolerated(tmp_path, caplog):
    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 1, "train/loss": 2.0}\n{"step": 2, "train/loss": 1.5}\n{"step": 3, "trai')
    with caplog.at_level(logging.WARNING, logger="trainer.evaluation.report.train_log"):
        assert [record["step"] for record in read_train_log(log)] == [1, 2]
    assert "train_log.jsonl: line 3 is cut short" in caplog.text
    log.write_text('{"step": 1}\n{"step": 2, "trai\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"train_log\.jsonl: line 2, column \d+: invalid JSON"):
        read_train_log(log)


_CONVERT_CHUNK = image_conversion.convert_chunk


def _die_on_img3(images, *args, **kwargs):
    """Runs in a forked worker: the chunk holding img3.png kills its process, as the out-of-memory killer would."""
    if any(str(image).endswith("img3.png") for image in images):
        os.kill(os.getpid(), signal.SIGKILL)
    return _CONVERT_CHUNK(images, *args, **kwargs)


def test_a_killed_prepare_worker_is_one_line_and_installs_nothing(tmp_path, monkeypatch):
    path = small_source(tmp_path / "src", splits=("train",) * 20)
    monkeypatch.setattr(image_conversion, "convert_chunk", _die_on_img3)
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["karpathy", "--json", path, "--out", tmp_path / "out", "--workers", 2, "--min-word-freq", 1])
    message = str(exit_info.value)
    assert message.startswith("error: an image-converting worker process died") and "\n" not in message
    assert re.search(r"while images \d+-20 of 20 were being converted \(the first of them: .*img\d+\.png\); nothing "
                     r"was written$", message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no output, no staging folder left
