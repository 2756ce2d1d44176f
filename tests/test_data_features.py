"""Feature cache: CLI output layout, refusal of mismatched caches, and model outputs equal to the image path."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch
from test_data_stream import captions_for, write_dataset

from data_pipelines.data_sources import DataSource
from data_pipelines.feature_cache import check_feature_cache
from data_pipelines.features import extract_features, main
from data_pipelines.manifest import read_manifest
from data_pipelines.stream import TrainLoaderOptions, build_eval_loader
from data_pipelines.train_stream import build_lane_loader
from data_pipelines.vocab import Vocabulary
from modeling import Captioner, CaptionerConfig
from modeling.encoder import backbone_fingerprint, build_backbone

IMAGE_SIZE = 64  # ResNet-50 feature map 2x2: tiny but a real spatial map


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("features") / "data", {"train": [3, 2, 3], "val": [2, 2]},
                         image_size=IMAGE_SIZE)


@pytest.fixture(scope="module")
def cache(data_root) -> Path:
    out = data_root.parent / "feats"
    main(["--data", str(data_root), "--out", str(out), "--weights", "none", "--image-size", str(IMAGE_SIZE),
          "--batch-size", "3"])
    return out


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.build((c for i in range(12) for c in captions_for(i)), min_freq=1)


def assert_close_fp16(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """fp16 keeps 11 significant bits (relative step 4.9e-4); sums over 2048 channels add a few such steps, so the
    tolerance is 1e-3 of each element plus 1e-3 of the tensor's largest magnitude."""
    torch.testing.assert_close(actual, expected, rtol=1e-3, atol=1e-3 * expected.abs().max().item())


def members(shard: Path) -> list[str]:
    with tarfile.open(shard) as tar:
        return [m.name for m in tar]


def test_cache_mirrors_shards_and_keys_and_records_its_origin(data_root, cache):
    source, made = read_manifest(data_root), read_manifest(cache)
    for split, entry in source["splits"].items():
        assert made["splits"][split]["shards"] == entry["shards"]
        assert made["splits"][split]["images"] == entry["images"]
        assert made["splits"][split]["captions"] == entry["captions"]
        for name in entry["shards"]:
            keys = [m.rsplit(".", 1)[0] for m in members(data_root / name) if m.endswith(".json")]
            assert members(cache / name) == [f"{k}.{ext}" for k in keys for ext in ("json", "safetensors")]
    info = made["feature_cache"]
    assert info["weights"] == "none" and info["image_size"] == IMAGE_SIZE and info["feature_shape"] == [2048, 2, 2]
    assert info["backbone_fingerprint"] == backbone_fingerprint(build_backbone("none"))
    assert info["source"]["path"] == str(data_root.resolve())
    assert not list(cache.parent.glob(".feats.*"))  # no temporary directory left behind


def test_existing_cache_is_refused_unless_overwrite(data_root, cache, capsys):
    with pytest.raises(SystemExit):
        main(["--data", str(data_root), "--out", str(cache), "--weights", "none"])
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    replaced = extract_features(data_root, cache, "none", IMAGE_SIZE, splits=["val"], overwrite=True,
                                show_progress=False)
    assert list(replaced["splits"]) == ["val"] and not (cache / "train-000000.tar").exists()
    extract_features(data_root, cache, "none", IMAGE_SIZE, overwrite=True, show_progress=False)  # restore for others


def test_mismatched_cache_is_refused_naming_what_differs(data_root, cache, tmp_path):
    assert check_feature_cache(cache, "none", IMAGE_SIZE, data_root, build_backbone("none"))["image_size"] == IMAGE_SIZE
    with pytest.raises(ValueError, match="weights: cache has 'none', asked for 'imagenet'"):
        check_feature_cache(cache, "imagenet", IMAGE_SIZE, data_root)
    with pytest.raises(ValueError, match="image_size: cache has 64, asked for 224"):
        check_feature_cache(cache, "none", 224, data_root)
    changed = build_backbone("none")
    torch.nn.init.zeros_(changed.layer4[0].conv1.weight)
    with pytest.raises(ValueError, match="does not match checkpoint X .*backbone_fingerprint: cache has"):
        check_feature_cache(cache, "none", IMAGE_SIZE, data_root, changed, "checkpoint X")
    other = write_dataset(tmp_path / "other", {"train": [2, 3, 3], "val": [2, 2]})
    with pytest.raises(ValueError, match=f"source.dataset_fingerprint: .*made from {data_root.resolve()}"):
        check_feature_cache(cache, "none", IMAGE_SIZE, other)
    with pytest.raises(ValueError, match="not a feature cache"):
        check_feature_cache(data_root, "none", IMAGE_SIZE, data_root)
    with pytest.raises(ValueError, match="image_size: cache has 64, asked for 224"):
        check_feature_cache(cache, None, 224, data_root)


def test_train_stream_on_features_matches_the_image_stream(data_root, cache, vocab):
    options = dict(batch_size=2, num_workers=1, captions_per_image=2, image_size=IMAGE_SIZE)
    images, features = (list(build_lane_loader(data_root, vocab, TrainLoaderOptions(features_root=root, **options),
                                               global_batch_size=4, lanes=range(1, 2), epoch=2))  # process 1 of 2
                        for root in (None, cache))
    assert len(images) == len(features) == 2
    for a, b in zip(images, features):
        assert a["image_id"] == b["image_id"] and torch.equal(a["captions"], b["captions"])
        assert b["features"].shape == (2, 2048, 2, 2) and b["features"].dtype == torch.float32


def test_mixture_of_feature_caches_matches_the_mixture_of_images(data_root, cache, vocab):
    options = TrainLoaderOptions(batch_size=2, num_workers=0, captions_per_image=2, image_size=IMAGE_SIZE)
    images, features = (list(build_lane_loader([DataSource(str(data_root), 3.0, "a", root),
                                                DataSource(str(data_root), 1.0, "b", root)], vocab, options,
                                               global_batch_size=4, lanes=range(2), epoch=1))
                        for root in (None, str(cache)))
    assert len(images) == len(features) == 2 * 4  # (8 + 8 images) // 4 steps of 2 lanes
    for a, b in zip(images, features):
        assert a["image_id"] == b["image_id"] and torch.equal(a["captions"], b["captions"])
        assert b["features"].shape == (2, 2048, 2, 2)
    assert {image_id.split("/")[0] for batch in features for image_id in batch["image_id"]} == {"a", "b"}


def test_feature_batches_give_the_image_batches_model_outputs(data_root, cache, vocab):
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=len(vocab), encoder_weights="none")).eval()
    loaders = [build_eval_loader(data_root, "val", vocab, batch_size=4, num_workers=0, image_size=IMAGE_SIZE,
                                 features_root=root) for root in (None, cache)]
    (image_batch,), (feature_batch,) = (list(loader) for loader in loaders)
    assert image_batch["image_id"] == feature_batch["image_id"]
    captions = torch.tensor([vocab.encode(refs[0], max_len=6) + [0] * (6 - len(vocab.encode(refs[0], max_len=6)) + 2)
                             for refs in image_batch["references"]])
    with torch.no_grad():
        exact = model(image_batch["pixels"], captions)
        cached = model(feature_batch["features"], captions)
        assert_close_fp16(model.encode(feature_batch["features"]), model.encode(image_batch["pixels"]))
    assert_close_fp16(cached.logits, exact.logits)
    assert_close_fp16(cached.alphas, exact.alphas)
    assert json.loads((cache / "manifest.json").read_text())["feature_cache"]["dtype"] == "float16"


def test_a_cache_through_layer3_feeds_a_model_that_trains_layer4_only(data_root, tmp_path):
    out = tmp_path / "layer3"
    main(["--data", str(data_root), "--out", str(out), "--weights", "none", "--image-size", str(IMAGE_SIZE),
          "--through", "layer3"])
    info = read_manifest(out)["feature_cache"]
    assert info["through"] == "layer3" and info["feature_shape"] == [1024, 4, 4]
    assert info["backbone_fingerprint"] == backbone_fingerprint(build_backbone("none"), "layer3")
    check_feature_cache(out, "none", IMAGE_SIZE, data_root, build_backbone("none", "layer4"), "stage 2")
    check_feature_cache(out, "none", IMAGE_SIZE, data_root, build_backbone("none"), "a frozen model")
    with pytest.raises(ValueError, match="through layer3 cannot feed stage 2, whose encoder is fine-tuned from layer3: "
                                         "build a cache through layer2"):
        check_feature_cache(out, "none", IMAGE_SIZE, data_root, build_backbone("none", "layer3"), "stage 2")
