"""Lane-ordered training stream: the same images per step for any split of the lanes over processes, and a resume
that skips consumed samples as tar members yet yields the batches of a straight run."""
import pytest
import torch
import webdataset as wds
from test_data_stream import WORDS, captions_for, write_dataset

from data_pipelines.stream import TrainLoaderOptions
from data_pipelines.stream_samples import SampleDecoder
from data_pipelines.train_stream import build_lane_loader
from data_pipelines.vocab import Vocabulary

OPTIONS = dict(batch_size=4, image_size=32, captions_per_image=2, seed=5)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("lanes"), {"train": [6] * 8})  # 48 images, 24 per reader


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.build((c for i in range(len(WORDS)) for c in captions_for(i)), min_freq=1)


def batches(dataset, vocab, lanes, global_batch_size=8, start_step=0, **options):
    options = TrainLoaderOptions(**{**OPTIONS, **options})
    return list(build_lane_loader(dataset, vocab, options, global_batch_size, lanes, epoch=1, start_step=start_step))


def assert_same_batches(got, expected):
    assert [b["image_id"] for b in got] == [b["image_id"] for b in expected]
    for a, b in zip(got, expected):
        assert torch.equal(a["pixels"], b["pixels"]) and torch.equal(a["captions"], b["captions"])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_one_process_with_both_lanes_sees_what_two_processes_see(dataset, vocab, num_workers):
    both = batches(dataset, vocab, range(0, 2), num_workers=num_workers, augment=True)
    lane_0 = batches(dataset, vocab, range(0, 1), num_workers=num_workers, augment=True)
    lane_1 = batches(dataset, vocab, range(1, 2), num_workers=num_workers, augment=True)
    assert len(both) == 2 * 6  # 48 images // global batch 8 = 6 steps, 2 micro-batches each
    assert_same_batches(both[0::2], lane_0)
    assert_same_batches(both[1::2], lane_1)
    ids = [image_id for batch in both for image_id in batch["image_id"]]
    assert len(ids) == len(set(ids)) == 48  # every image once in the epoch (readers hold equal shares)
    assert all(batch["pixels"].shape == (4, 3, 32, 32) and batch["captions"].shape[:2] == (4, 2) for batch in both)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_yields_the_batches_of_a_straight_run(dataset, vocab, num_workers):
    straight = batches(dataset, vocab, range(0, 2), num_workers=num_workers, augment=True)
    for start_step in (1, 4, 5):
        resumed = batches(dataset, vocab, range(0, 2), num_workers=num_workers, augment=True, start_step=start_step)
        assert_same_batches(resumed, straight[2 * start_step:])


def test_resume_decodes_only_what_it_yields(dataset, vocab, monkeypatch):
    decoded = []
    original = SampleDecoder.__call__
    monkeypatch.setattr(SampleDecoder, "__call__", lambda self, raw, generator=None:
                        decoded.append(raw["__key__"]) or original(self, raw, generator))
    resumed = batches(dataset, vocab, range(0, 2), num_workers=0, start_step=5)
    assert len(resumed) == 2 and len(decoded) == 8  # the last step only: 5 x 8 consumed samples never decoded
    assert sorted(decoded) == sorted(i for b in resumed for i in b["image_id"])


def test_settings_that_do_not_divide_are_errors(dataset, vocab):
    with pytest.raises(ValueError, match=r"micro-batch 4 is not divisible by data.num_workers=3"):
        batches(dataset, vocab, range(0, 2), num_workers=3)
    with pytest.raises(ValueError, match=r"8 shard\(s\) cannot feed 8 lane\(s\) .* x 2 worker\(s\) = 16 readers"):
        batches(dataset, vocab, range(0, 4), batch_size=2, num_workers=2, global_batch_size=16)
    with pytest.raises(ValueError, match="start_step 6 is outside the epoch's 6 steps"):
        batches(dataset, vocab, range(0, 2), start_step=6)


def test_a_reader_whose_samples_never_decode_is_an_error_not_an_endless_loop(tmp_path, vocab):
    root = write_dataset(tmp_path / "broken", {"train": [3, 3]})
    for shard in root.glob("train-*.tar"):  # same members, undecodable JPEG bytes
        samples = list(wds.WebDataset(str(shard), shardshuffle=False))
        with wds.TarWriter(str(shard)) as writer:
            for sample in samples:
                writer.write({"__key__": sample["__key__"], "jpg": b"not a jpeg", "json": sample["json"]})
    with pytest.raises(RuntimeError, match="a whole pass over shards .* decoded nothing"):
        batches(root, vocab, range(0, 1), global_batch_size=4, num_workers=0)
