"""Streaming loaders on bad input: broken tar members are skipped and counted; impossible setups fail clearly."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch
from test_data_stream import captions_for, write_dataset

from data_pipelines.manifest import read_manifest
from data_pipelines.stream import TrainLoaderOptions, build_eval_loader
from data_pipelines.train_stream import build_lane_loader
from data_pipelines.transforms import eval_transform, train_transform
from data_pipelines.vocab import Vocabulary


@pytest.fixture()
def dataset(tmp_path) -> Path:
    return write_dataset(tmp_path / "data", {"train": [4, 3, 5], "val": [3, 4]})


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.build(captions_for(0) + captions_for(5), min_freq=1)


def rewrite_member(shard: Path, name: str, payload: bytes) -> None:
    """Replace one tar member's bytes, keeping every other member as it was."""
    with tarfile.open(shard) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar]
    with tarfile.open(shard, "w") as tar:
        for member_name, data in members:
            data = payload if member_name == name else data
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def eval_ids(loader) -> list[str]:
    return [image_id for batch in loader for image_id in batch["image_id"]]


def test_corrupt_jpeg_member_is_skipped_and_counted(dataset, vocab):
    rewrite_member(dataset / "val-000001.tar", "img0016.jpg", b"\xff\xd8 not a jpeg")
    loader = build_eval_loader(dataset, "val", vocab, batch_size=3, num_workers=0, image_size=32)
    assert eval_ids(loader) == [f"img{i:04d}" for i in range(12, 19) if i != 16]
    assert loader.broken_samples == 1


def test_malformed_json_member_is_skipped_and_counted(dataset, vocab):
    rewrite_member(dataset / "val-000000.tar", "img0013.json", b"{not json")
    loader = build_eval_loader(dataset, "val", vocab, batch_size=3, num_workers=0, image_size=32)
    assert eval_ids(loader) == [f"img{i:04d}" for i in range(12, 19) if i != 13]
    assert loader.broken_samples == 1


def test_truncated_shard_keeps_its_readable_samples_and_the_other_shards(dataset, vocab):
    shard = dataset / "val-000001.tar"
    with tarfile.open(shard) as tar:
        second_jpeg = tar.getmembers()[2]  # members: img0015.jpg, img0015.json, img0016.jpg, ...
    shard.write_bytes(shard.read_bytes()[:second_jpeg.offset_data + second_jpeg.size // 2])
    loader = build_eval_loader(dataset, "val", vocab, batch_size=3, num_workers=0, image_size=32)
    assert eval_ids(loader) == ["img0012", "img0013", "img0014", "img0015"]
    assert loader.broken_samples >= 1


def test_train_stream_with_a_broken_member_still_yields_its_full_length(dataset, vocab):
    rewrite_member(dataset / "train-000002.tar", "img0008.jpg", b"garbage")
    loader = build_lane_loader(dataset, vocab, TrainLoaderOptions(batch_size=2, num_workers=0, image_size=32),
                               global_batch_size=2, lanes=range(1))
    batches = list(loader)
    assert len(batches) == len(loader) == 6 and loader.broken_samples >= 1
    assert all("img0008" not in batch["image_id"] for batch in batches)


def test_fewer_shards_than_readers_is_a_clear_error(dataset, vocab):
    with pytest.raises(ValueError, match=r"3 shard\(s\) cannot feed 2 lane\(s\) .* x 2 worker\(s\) = 4 readers"):
        build_lane_loader(dataset, vocab, TrainLoaderOptions(batch_size=2, num_workers=2), global_batch_size=4,
                          lanes=range(0, 1))


def test_dataset_smaller_than_one_global_batch_is_a_clear_error(dataset, vocab):
    with pytest.raises(ValueError, match=r"12 image\(s\) do not fill one global batch of 16"):
        build_lane_loader(dataset, vocab, TrainLoaderOptions(batch_size=8, num_workers=1), global_batch_size=16,
                          lanes=range(1, 2))


def test_manifest_problems_name_the_file(dataset, vocab, tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest"):
        read_manifest(tmp_path)
    (dataset / "val-000001.tar").unlink()
    with pytest.raises(FileNotFoundError, match=r"splits.val lists shard\(s\) missing .*val-000001.tar"):
        read_manifest(dataset)
    (dataset / "manifest.json").write_text(json.dumps({"splits": {"train": {"shards": "x"}}}))
    with pytest.raises(ValueError, match=r"manifest.json: splits.train must have 'shards'"):
        read_manifest(dataset)
    with pytest.raises(ValueError, match="no split 'dev'"):
        (dataset / "manifest.json").write_text(json.dumps({"splits": {}}))
        build_eval_loader(dataset, "dev", vocab)


def test_eval_transform_resizes_shorter_side_and_center_crops():
    from PIL import Image

    image = Image.new("RGB", (80, 40), (255, 0, 0))
    tensor = eval_transform(32)(image)
    assert tensor.shape == (3, 32, 32)
    assert torch.allclose(tensor[0], torch.full((32, 32), (1 - 0.485) / 0.229), atol=1e-4)


def test_train_transform_is_deterministic_given_a_generator_and_never_flips():
    from PIL import Image

    gradient = Image.fromarray((torch.arange(64).repeat(48, 1) * 4).to(torch.uint8).numpy()).convert("RGB")
    transform = train_transform(32, augment=True)
    a = transform(gradient, torch.Generator().manual_seed(1))
    b = transform(gradient, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert (a[0, :, 1:] >= a[0, :, :-1] - 1e-6).all()  # left-to-right brightness order survives: no flip
    assert train_transform(32, augment=False)(gradient).shape == (3, 32, 32)
