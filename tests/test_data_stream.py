"""Streaming loaders: even batch counts over processes/workers, exact eval coverage, reproducible epochs, captions."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from data_pipelines.manifest import read_manifest
from data_pipelines.stream import TrainLoaderOptions, build_eval_loader
from data_pipelines.train_stream import build_lane_loader
from data_pipelines.vocab import Vocabulary

UNEVEN_TRAIN_SHARDS = [7, 3, 5, 2, 4]
WORDS = ["red", "blue", "green", "square", "circle", "left", "right", "small", "big"]


def captions_for(index: int) -> list[str]:
    """Three distinct captions per image, with capitals and punctuation."""
    w = [WORDS[(index + j) % len(WORDS)] for j in range(3)]
    return [f"A {w[0]} {w[1]}.", f"The {w[1]} {w[2]}, {w[0]}!", f"{w[2]} {w[0]} {w[1]} {w[2]}"]


def write_dataset(root: Path, shard_sizes: dict[str, list[int]], image_size: int = 36) -> Path:
    """Prepare-style shards ``{split}-NNNNNN.tar`` (KEY.jpg + KEY.json) and ``manifest.json``; ids are global."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    manifest, index = {"splits": {}}, 0
    for split, sizes in shard_sizes.items():
        names = []
        for shard, size in enumerate(sizes):
            names.append(f"{split}-{shard:06d}.tar")
            with wds.TarWriter(str(root / names[-1])) as writer:
                for _ in range(size):
                    pixels = rng.integers(0, 256, (image_size, image_size + 6, 3), dtype=np.uint8)
                    jpeg = io.BytesIO()
                    Image.fromarray(pixels).save(jpeg, "JPEG")
                    meta = {"image_id": f"img{index:04d}", "captions": captions_for(index), "width": image_size + 6,
                            "height": image_size, "source": f"synthetic/{index}.png"}
                    writer.write({"__key__": f"img{index:04d}", "jpg": jpeg.getvalue(), "json": json.dumps(meta).encode()})
                    index += 1
        manifest["splits"][split] = {"shards": names, "images": sum(sizes), "captions": 3 * sum(sizes)}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("stream"), {"train": UNEVEN_TRAIN_SHARDS, "val": [4, 3, 2, 5, 1],
                                                             "test": [3, 2]})


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.build((c for i in range(len(WORDS)) for c in captions_for(i)), min_freq=1)


def train_batches(root, vocab, epoch: int = 0, rank: int = 0, world_size: int = 2, **kwargs) -> tuple[int, list[dict]]:
    """Process ``rank`` of ``world_size``, one lane each: the lane loader with a global batch of world_size x B."""
    options = TrainLoaderOptions(**{**dict(batch_size=2, image_size=32, num_workers=2, captions_per_image=1), **kwargs})
    loader = build_lane_loader(root, vocab, options, global_batch_size=world_size * options.batch_size,
                               lanes=range(rank, rank + 1), epoch=epoch)
    return len(loader), list(loader)


def test_two_processes_two_workers_uneven_shards_yield_equal_batch_counts(dataset, vocab):
    counts = set()
    for rank in (0, 1):
        length, batches = train_batches(dataset, vocab, rank=rank, epoch=3)
        assert len(batches) == length
        counts.add(length)
        for batch in batches:
            assert batch["pixels"].shape == (2, 3, 32, 32)
            assert batch["captions"].shape[:2] == (2, 1) and batch["captions"].dtype == torch.long
            assert (batch["captions"][..., 0] == vocab.bos_id).all()
    # 21 images // (batch 2 x 2 processes) = 5 steps, one batch of each process's lane per step
    assert counts == {5}


def test_epochs_differ_but_each_is_reproducible(dataset, vocab):
    _, first = train_batches(dataset, vocab, rank=1, epoch=0, seed=7)
    _, again = train_batches(dataset, vocab, rank=1, epoch=0, seed=7)
    _, next_epoch = train_batches(dataset, vocab, rank=1, epoch=1, seed=7)
    assert [b["image_id"] for b in first] == [b["image_id"] for b in again]
    for a, b in zip(first, again):
        assert torch.equal(a["pixels"], b["pixels"]) and torch.equal(a["captions"], b["captions"])
    assert [b["image_id"] for b in first] != [b["image_id"] for b in next_epoch]


def test_one_reader_sees_each_image_once_per_epoch_when_batches_divide_the_split(dataset, vocab):
    _, batches = train_batches(dataset, vocab, world_size=1, num_workers=0, batch_size=3)
    ids = [image_id for batch in batches for image_id in batch["image_id"]]
    assert sorted(ids) == [f"img{i:04d}" for i in range(21)]


def test_augmented_stream_is_reproducible_and_leaves_global_rng_alone(dataset, vocab):
    rng_state = torch.random.get_rng_state()
    _, first = train_batches(dataset, vocab, num_workers=0, world_size=1, augment=True, seed=3)
    _, again = train_batches(dataset, vocab, num_workers=0, world_size=1, augment=True, seed=3)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert all(torch.equal(a["pixels"], b["pixels"]) for a, b in zip(first, again))
    _, plain = train_batches(dataset, vocab, num_workers=0, world_size=1, augment=False, seed=3)
    assert not torch.equal(first[0]["pixels"], plain[0]["pixels"])


@pytest.mark.parametrize("split", ["val", "test"])  # val: 5 shards >= 4 readers; test: 2 shards < 4 readers
def test_eval_loader_covers_each_image_exactly_once_with_all_references(dataset, vocab, split):
    seen: list[str] = []
    for rank in (0, 1):
        for batch in build_eval_loader(dataset, split, vocab, batch_size=2, rank=rank, world_size=2, num_workers=2,
                                       image_size=32):
            assert batch["pixels"].shape[1:] == (3, 32, 32)
            for image_id, references in zip(batch["image_id"], batch["references"]):
                assert references == captions_for(int(image_id[3:]))
            seen.extend(batch["image_id"])
    entry = read_manifest(dataset)["splits"][split]
    assert len(seen) == len(set(seen)) == entry["images"]


def test_eval_loader_is_unshuffled_and_in_shard_order(dataset, vocab):
    batches = list(build_eval_loader(dataset, "val", vocab, batch_size=4, num_workers=0, image_size=32))
    ids = [image_id for batch in batches for image_id in batch["image_id"]]
    assert ids == sorted(ids) and [len(b["image_id"]) for b in batches] == [4, 4, 4, 3]


@pytest.mark.parametrize("k", [2, 3, 5])
def test_k_captions_per_image_without_replacement_when_possible(dataset, vocab, k):
    _, batches = train_batches(dataset, vocab, num_workers=0, world_size=1, captions_per_image=k,
                               max_caption_len=None)
    for batch in batches:
        assert batch["captions"].shape[:2] == (2, k)
        for image_id, rows in zip(batch["image_id"], batch["captions"]):
            decoded = [vocab.decode(row.tolist()) for row in rows]
            references = [vocab.decode(vocab.encode(c)) for c in captions_for(int(image_id[3:]))]
            assert set(decoded) <= set(references)
            assert len(set(decoded)) == min(k, len(references))


def test_captions_are_padded_and_capped(dataset, vocab):
    _, batches = train_batches(dataset, vocab, num_workers=0, world_size=1, captions_per_image=3, max_caption_len=2)
    captions = batches[0]["captions"]
    assert captions.shape[-1] == 4  # <bos> + 2 words + <eos>
    lengths = (captions != vocab.pad_id).sum(-1)
    assert (captions.gather(-1, (lengths - 1).unsqueeze(-1)) == vocab.eos_id).all()


def test_resampled_mode_runs_with_few_shards_and_keeps_its_length(dataset, vocab):
    with pytest.raises(ValueError, match=r"2 shard\(s\) cannot feed 2 lane\(s\)"):  # 2 lanes x 2 workers = 4 readers
        train_batches(dataset, vocab, split="test", rank=1)
    length, batches = train_batches(dataset, vocab, split="test", rank=1, resampled=True)
    assert length == len(batches) == 1  # 5 images // (batch 2 x 2 processes) = 1 step
