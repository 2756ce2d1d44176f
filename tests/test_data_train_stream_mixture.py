"""The lane-ordered training stream over a weighted mixture of prepared datasets: each source's share of an epoch
matches its weight, a small source restarts on its own, and the order is the same for any split of the lanes over
processes and after a resume at any step."""
from pathlib import Path

import pytest
from test_data_stream import WORDS, captions_for, write_dataset
from test_data_train_stream import assert_same_batches

from data_pipelines.data_sources import DataSource
from data_pipelines.stream import TrainLoaderOptions
from data_pipelines.train_stream import build_lane_loader
from data_pipelines.vocab import Vocabulary
from tests.remote_servers import http_server

OPTIONS = dict(batch_size=4, image_size=32, captions_per_image=2, seed=5)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    base = tmp_path_factory.mktemp("mixture")
    # the same image ids in both: the stream tells them apart as "<source name>/<image id>"
    return [DataSource(str(write_dataset(base / "big", {"train": [6] * 8})), weight=1.0, name="big"),
            DataSource(str(write_dataset(base / "small", {"train": [2] * 8})), weight=3.0, name="small")]


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.build((c for i in range(len(WORDS)) for c in captions_for(i)), min_freq=1)


def batches(data, vocab, lanes, epoch=1, start_step=0, global_batch_size=8, **options):
    options = TrainLoaderOptions(**{**OPTIONS, **options})
    return list(build_lane_loader(data, vocab, options, global_batch_size, lanes, epoch=epoch, start_step=start_step))


def image_ids(got):
    return [image_id for batch in got for image_id in batch["image_id"]]


def test_each_source_gets_its_weights_share_within_binomial_tolerance(sources, vocab):
    ids = [i for epoch in range(6) for i in image_ids(batches(sources, vocab, range(0, 2), epoch=epoch))]
    assert len(ids) == 6 * (48 + 16) // 8 * 8  # an epoch: the sources' images together, in global batches
    share, n = sum(i.startswith("small/") for i in ids) / len(ids), len(ids)
    expected = 3 / 4
    assert abs(share - expected) <= 4 * (expected * (1 - expected) / n) ** 0.5, share


def test_a_source_runs_out_and_restarts_on_its_own(sources, vocab):
    ids = image_ids(batches(sources, vocab, range(0, 1), num_workers=0))
    small, big = [i for i in ids if i.startswith("small/")], [i for i in ids if i.startswith("big/")]
    assert len(small) > 16 and len(set(small)) == 8  # lane 0's 8 small images, pass after pass
    for start in range(0, len(small) - 8, 8):  # every pass shows each image once before any comes round again
        assert len(set(small[start:start + 8])) == 8
    assert len(big) == len(set(big)) < 24  # the big source is still in its first pass


@pytest.mark.parametrize("num_workers", [0, 2])
def test_one_process_with_both_lanes_sees_what_two_processes_see(sources, vocab, num_workers):
    both = batches(sources, vocab, range(0, 2), num_workers=num_workers, augment=True)
    lane_0 = batches(sources, vocab, range(0, 1), num_workers=num_workers, augment=True)
    lane_1 = batches(sources, vocab, range(1, 2), num_workers=num_workers, augment=True)
    assert len(both) == 2 * 8
    assert_same_batches(both[0::2], lane_0)
    assert_same_batches(both[1::2], lane_1)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_yields_the_batches_of_a_straight_run(sources, vocab, num_workers):
    straight = batches(sources, vocab, range(0, 2), num_workers=num_workers, augment=True)
    for start_step in (1, 3, 7):
        resumed = batches(sources, vocab, range(0, 2), num_workers=num_workers, augment=True, start_step=start_step)
        assert_same_batches(resumed, straight[2 * start_step:])


def test_one_source_reads_as_the_dataset_alone(sources, vocab):
    alone = batches(sources[0].root, vocab, range(0, 2), augment=True)
    assert_same_batches(batches(sources[:1], vocab, range(0, 2), augment=True), alone)
    mixed = batches(sources, vocab, range(0, 2), augment=True)
    assert image_ids(mixed) != image_ids(alone)


def test_a_source_with_too_few_shards_is_named(sources, vocab):
    with pytest.raises(ValueError, match=r"big: train: 8 shard\(s\) cannot feed 8 lane\(s\)"):
        batches(sources, vocab, range(0, 4), batch_size=2, num_workers=2, global_batch_size=16)
    with pytest.raises(ValueError, match="either every source of a mixture has a feature cache or none"):
        batches([sources[0], DataSource(sources[1].root, features="/x")], vocab, range(0, 2))


def test_a_source_at_a_url_mixes_as_on_disk(sources, vocab):
    with http_server(Path(sources[1].root)) as (url, _):
        remote = [sources[0], DataSource(url, sources[1].weight, sources[1].name)]
        assert_same_batches(batches(remote, vocab, range(0, 2), start_step=2), batches(sources, vocab, range(0, 2))[4:])
