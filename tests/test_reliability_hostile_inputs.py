"""Inputs sized, repeated or set to make the framework allocate, guess or crash: each row is a case tried as a hostile
user would, and the test that pins the fix (docs/reliability.md, "Sizes, repeats and settings").

| case | input | what happened | what happens now | test |
|---|---|---|---|---|
| thin image | a 16 KB JPEG of 1 x 65000 pixels to `caption` | killed above 6 GB (the bomb check counts decoded pixels, not the resized size) | the resize target is checked before any allocation (`EvalTransform.resize_problem`: at most 2^25 pixels); `caption` names the image, the others are captioned | `test_an_extreme_aspect_ratio_is_refused_before_resizing` |
| image size | a checkpoint whose `trainer_state.json` says `image_size: 20000` | above 6 GB (only `>= 1` was checked) | refused: a positive integer at most 2048, naming the file and key | `test_a_checkpoint_image_size_is_bounded` |
| braces | `prepare webdataset --shards 'DIR/{0..99999999}.tar'` | 6 GB in 15 s: the names were listed before the cap was checked | ranges are counted before they are listed: refused in microseconds | `test_brace_ranges_are_counted_before_they_are_listed` |
| duplicate YAML | a config with two `train:` sections, or one key twice | the first was dropped without a word | one line naming the file, line, key and the first line | `test_duplicate_config_keys_are_refused_naming_key_and_lines` |
| duplicate key | one key twice in an img2dataset shard | the second image was stored with the first's caption | the later sample is skipped and counted in `stats.json` (`key repeated in the shard`) | `test_a_key_repeated_in_a_shard_skips_the_later_sample` |
| override | a control character in a `key=value` override; `seed=2**64` | tracebacks (the second without the key) | one line naming the override / the key and range | `test_bad_overrides_are_one_line_errors` |
| trackers | `logging.trackers=[wandb]` without `WANDB_MODE` or a key; an unreachable MLflow URI (255 s, then a traceback); `MLFLOW_TRACKING_URI=file:...` | tracebacks | one line naming the setting, within seconds; a `file:` store works | `test_a_tracker_that_cannot_start_is_one_line_naming_the_setting`, `test_an_mlflow_file_store_is_accepted` |
| offline | `model.encoder_weights=imagenet` without network | a traceback | one line naming `encoder_weights` and the way out | `test_imagenet_weights_offline_is_one_line` |
"""
from __future__ import annotations

import io
import json
import socket
import tarfile
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from urllib.error import URLError

import pytest
from PIL import Image
from torchvision.models import ResNet50_Weights

from data_pipelines import prepare
from data_pipelines.sources import DataFormatError
from data_pipelines.sources.webdataset_shards import expand_braces
from data_pipelines.transforms import eval_transform
from modeling.encoder import build_backbone
from trainer.config.schema import load_config
from trainer.inference.pipeline import CaptionPipeline, load_for_inference
from trainer.training import trackers
from trainer.training.trackers import build_trackers
from trainer.user_errors import exit_on_user_error


def thin_jpeg(path: Path, width: int = 1, height: int = 65000) -> Path:
    Image.new("L", (width, height), 128).save(path, "JPEG")
    return path


def test_an_extreme_aspect_ratio_is_refused_before_resizing(tiny_checkpoint, tmp_path):
    assert eval_transform(224).resize_problem(640, 480) is None
    assert "224 x 14560000 pixels" in eval_transform(224).resize_problem(1, 65000)
    thin, fine = thin_jpeg(tmp_path / "thin.jpg"), thin_jpeg(tmp_path / "fine.jpg", 48, 64)
    assert thin.stat().st_size < 100_000
    pipe = CaptionPipeline.from_checkpoint(tiny_checkpoint[0])
    tracemalloc.start()
    results = pipe([thin, fine], max_len=3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert results[0].error.startswith("image of 1 x 65000 pixels: resizing its shorter side to 48 would make 48 x "
                                       "3120000 pixels") and results[0].captions == []
    assert results[1].error is None and results[1].captions
    assert peak < 200 << 20  # the 48 x 3120000 RGB resize alone would be 450 MB


def test_a_checkpoint_image_size_is_bounded(tiny_checkpoint, tmp_path):
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    for path in tiny_checkpoint[0].iterdir():
        (checkpoint / path.name).write_bytes(path.read_bytes())
    for size in (20000, 0, 2049):
        (checkpoint / "trainer_state.json").write_text(json.dumps({"train_config": {"data": {"image_size": size}}}))
        with pytest.raises(ValueError, match=rf"trainer_state.json: key 'train_config.data.image_size' = {size}, "
                                             r"expected a positive integer at most 2048"):
            load_for_inference(checkpoint, None)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"train_config": {"data": {"image_size": 2048}}}))
    assert load_for_inference(checkpoint, None)[2] == 2048


def test_brace_ranges_are_counted_before_they_are_listed():
    tracemalloc.start()
    with pytest.raises(DataFormatError, match=r"expands to 100000000 names \(at most 1000000\)"):
        expand_braces("data/{0..99999999}.tar")
    with pytest.raises(DataFormatError, match=r"expands to 4000000 names"):
        expand_braces("data/{0..1999999}-{a,b}.tar")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 << 20  # listing 4 million names first took ~300 MB
    assert expand_braces("d/{08..10}-{a,b}.tar") == ["d/08-a.tar", "d/08-b.tar", "d/09-a.tar", "d/09-b.tar",
                                                     "d/10-a.tar", "d/10-b.tar"]


@pytest.mark.parametrize("text, key, line, first", [
    ("train:\n  max_steps: 3\noptim:\n  lr: 0.1\ntrain:\n  max_steps: 5\n", "train", 5, 1),
    ("train:\n  max_steps: 3\n  global_batch_size: 4\n  max_steps: 5\n", "max_steps", 4, 2),
])
def test_duplicate_config_keys_are_refused_naming_key_and_lines(tmp_path, text, key, line, first):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as refused:
        load_config(path)
    assert str(refused.value) == (f"{path}: line {line}, column {3 if key == 'max_steps' else 1}: key {key!r} is "
                                  f"given twice (first on line {first}); one value per key")


def add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_key_repeated_in_a_shard_skips_the_later_sample(tmp_path):
    with tarfile.open(tmp_path / "00000.tar", "w") as tar:
        for key, colour, caption in (("a", (255, 0, 0), b"a red square"), ("b", (0, 0, 255), b"a blue square"),
                                     ("a", (0, 255, 0), b"a green square"), ("b", (0, 0, 250), b"")):
            add(tar, f"{key}.jpg", jpeg(colour))
            if caption:
                add(tar, f"{key}.txt", caption)
    out = tmp_path / "out"
    prepare.run(["webdataset", "--shards", str(tmp_path / "00000.tar"), "--out", out, "--image-size", 32,
                 "--min-word-freq", 1, "--workers", 1, "--val-fraction", 0, "--test-fraction", 0])
    stats = json.loads((out / "stats.json").read_text())
    repeated = [entry for entry in stats["skipped"] if entry["reason"] == "key repeated in the shard: the later "
                                                                           "sample is skipped"]
    assert sorted(entry["image_id"] for entry in repeated) == ["a", "b"]
    with tarfile.open(out / "train-000000.tar") as tar:
        members = {member.name: tar.extractfile(member).read() for member in tar}
    assert json.loads(members["a.json"])["captions"] == ["a red square"]
    red = Image.open(io.BytesIO(members["a.jpg"])).convert("RGB").getpixel((16, 16))
    assert red[0] > 200 and red[1] < 60  # the first sample's image, not the green one


@pytest.mark.parametrize("override, message", [
    ("train.max_steps=1\x07", r"^override 'train.max_steps=1\\x07': the value is not a plain YAML value "),
    ("seed=18446744073709551616", r"^config key 'seed' = 18446744073709551616 is out of range: expected 0 <= value "
                                  r"<= 4294967295$"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, [override])


class RecordingAccelerator(SimpleNamespace):
    def init_trackers(self, project, config):
        for tracker in self.log_with:
            if not isinstance(tracker, str):
                tracker.start()
                tracker.store_init_configuration(config)


def test_a_tracker_that_cannot_start_is_one_line_naming_the_setting(tmp_path, monkeypatch):
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    accelerator = RecordingAccelerator(log_with=build_trackers(["tensorboard", "wandb"], tmp_path / "w"))
    with pytest.raises(SystemExit) as stopped, exit_on_user_error():
        trackers.start_trackers(accelerator, ["tensorboard", "wandb"], {"seed": 0})
    assert "wandb could not start" in stopped.value.code and "WANDB_MODE=offline" in stopped.value.code
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://bob:pw@127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    accelerator = RecordingAccelerator(log_with=build_trackers(["tensorboard", "mlflow"], tmp_path / "m"))
    with pytest.raises(ValueError) as refused:
        trackers.start_trackers(accelerator, ["tensorboard", "mlflow"], {"seed": 0})
    assert str(refused.value).startswith(f"config key 'logging.trackers': mlflow: MLFLOW_TRACKING_URI=http://***@"
                                         f"127.0.0.1:{port} cannot be reached within 5 s")


def test_an_mlflow_file_store_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "store").as_uri())
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    accelerator = RecordingAccelerator(log_with=build_trackers(["tensorboard", "mlflow"], tmp_path / "run"))
    trackers.start_trackers(accelerator, ["tensorboard", "mlflow"], {"seed": 0})
    import mlflow

    mlflow.end_run()
    assert list((tmp_path / "store").rglob("params/seed"))


def test_imagenet_weights_offline_is_one_line(monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(ResNet50_Weights, "get_state_dict", offline)
    with pytest.raises(SystemExit) as stopped, exit_on_user_error():
        build_backbone("imagenet")
    assert stopped.value.code.startswith("error: encoder_weights='imagenet': could not download") and \
        "\n" not in stopped.value.code and "encoder_weights='none'" in stopped.value.code
