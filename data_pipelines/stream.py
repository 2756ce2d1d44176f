"""Eval stream of prepared shards (images or cached backbone features), and the pieces both streams share.

Evaluation: ``build_eval_loader`` yields every image of a split exactly once over all (rank, DataLoader worker) slots,
in shard order, unshuffled, with all reference captions; broken members are counted and skipped, and the
``StreamLoader`` it returns says after the pass how many images could not be read (``coverage_warning``).
``check_splits`` is the set-up check that a run's splits and their shards exist.

Training reads through the lane loader, ``data_pipelines.train_stream.build_lane_loader``, which takes from here
``TrainLoaderOptions`` (what a training stream reads and how it batches) and the shared pieces: ``split_shards`` (a
split's shard locations, from the dataset or its feature cache), ``sample_decoder`` and ``worker_index``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from data_pipelines.data_root import DataRoot
from data_pipelines.manifest import read_manifest
from data_pipelines.stream_samples import (
    BrokenSampleCounter,
    SampleDecoder,
    batched,
    collate_eval,
    decode_samples,
    read_tar_samples,
)
from data_pipelines.transforms import eval_transform

__all__ = ["TrainLoaderOptions", "build_eval_loader", "check_splits", "StreamLoader", "sample_decoder", "split_shards",
           "worker_index"]


def worker_index(expected_workers: int) -> int:
    """This DataLoader worker's index (0 in the main process), checked against the worker count the stream was built
    for: a stream iterated outside its loader would read the wrong share of the shards."""
    info = get_worker_info()
    workers, index = (1, 0) if info is None else (info.num_workers, info.id)
    if workers != expected_workers:
        raise RuntimeError(f"stream was built for {expected_workers} DataLoader worker(s) per rank but runs in "
                           f"{workers}; iterate it through the loader returned by build_*_loader")
    return index


@dataclass(eq=False)
class EvalStream(IterableDataset):
    """Every image of a split exactly once over all (rank, worker) slots, in shard order, no shuffle."""

    shards: list[str]
    decoder: SampleDecoder
    batch_size: int
    rank: int
    world_size: int
    num_workers: int
    broken: BrokenSampleCounter

    def __post_init__(self) -> None:
        super().__init__()

    def __iter__(self) -> Iterator[dict]:
        worker = worker_index(self.num_workers)
        slots, slot = self.world_size * self.num_workers, self.rank * self.num_workers + worker
        if len(self.shards) >= slots:  # disjoint shard subsets, as split_by_node then split_by_worker
            raw = read_tar_samples(self.shards[self.rank::self.world_size][worker::self.num_workers], self.broken)
        else:  # too few shards to share: every slot reads all of them and keeps every slots-th sample
            raw = (s for i, s in enumerate(read_tar_samples(self.shards, self.broken)) if i % slots == slot)
        for batch in batched(decode_samples(raw, self.decoder, self.broken), self.batch_size, keep_partial=True):
            yield collate_eval(batch)


class StreamLoader(DataLoader):
    """A DataLoader over an eval stream that knows how many broken samples it skipped and how many images its split
    has (so it can say when the scores are over fewer)."""

    def __init__(self, stream: EvalStream, num_workers: int, images_in_split: int, split_name: str):
        # Own generator: the DataLoader draws its worker base seed from it instead of the trainer's global RNG.
        super().__init__(stream, batch_size=None, num_workers=num_workers, persistent_workers=False,
                         generator=torch.Generator().manual_seed(0))
        self.images_in_split, self.split_name = images_in_split, split_name

    def coverage_warning(self, scored: int) -> str | None:
        """None when ``scored`` (distinct images, gathered over all ranks) is every image the manifest lists for
        the split, else a line saying "N of M images" and why."""
        if scored >= self.images_in_split:
            return None
        return (f"scored {scored} of {self.images_in_split} images of {self.split_name}: "
                f"{self.images_in_split - scored} could not be read ({self.broken_samples} broken sample(s) skipped by "
                f"this process, see the warnings above); the metrics are over the {scored} only")

    def __len__(self) -> int:
        raise TypeError("an eval loader has no fixed length (ranks may get different counts)")

    @property
    def broken_samples(self) -> int:
        """Broken tar members / undecodable samples skipped so far (summed over worker processes)."""
        return self.dataset.broken.count


def check_splits(root, splits, features_root=None) -> None:
    """Set-up check before a run: each of ``splits`` exists in the dataset ``root`` (and in the feature cache, when
    given) and every shard it lists is there. FileNotFoundError / ValueError name the manifest, split and shard."""
    for source in [DataRoot(root)] + ([DataRoot(features_root)] if features_root is not None else []):
        available = read_manifest(source)["splits"]
        for split in (split for split in splits if split not in available):
            raise ValueError(f"{source.join('manifest.json')}: no split {split!r} (has {sorted(available)})")


def split_shards(root, split: str, features_root: str | Path | None) -> tuple[list[str], dict]:
    """Shard locations (paths or URLs) and manifest entry of ``split``, read from the feature cache when one is
    given (the caller checks once, with ``data_pipelines.feature_cache.check_feature_cache``, that the cache was made
    from ``root``)."""
    source = DataRoot(root if features_root is None else features_root)
    check_splits(source, [split])
    entry = read_manifest(source)["splits"][split]
    return [source.join(name) for name in entry["shards"]], entry


def sample_decoder(features_root, transform: Callable) -> SampleDecoder:
    """The decoder of a stream's samples: cached features when ``features_root`` is given (``transform`` unused),
    else JPEGs through ``transform``."""
    return SampleDecoder(None if features_root is not None else transform, use_features=features_root is not None)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


@dataclass(frozen=True)
class TrainLoaderOptions:
    """What a training stream (``data_pipelines.train_stream.build_lane_loader``) reads and how it batches; the same
    for every epoch and process of a run."""

    batch_size: int  # images per micro-batch (one lane's batch; the global batch is given to the loader)
    seed: int = 0
    num_workers: int = 2
    captions_per_image: int = 1
    max_caption_len: int | None = 20
    image_size: int = 224
    features_root: str | Path | None = None  # a feature cache of root (data_pipelines.features) instead of images
    augment: bool = False
    resampled: bool = False
    split: str = "train"
    shuffle_buffer: int = 1000


def build_eval_loader(root, split: str = "val", vocab=None, batch_size: int = 32, rank: int = 0, world_size: int = 1,
                      num_workers: int = 2, image_size: int = 224, features_root=None) -> StreamLoader:
    """Validation/test loader: each image of ``split`` exactly once over all ranks, with all reference captions.

    Batches: ``{"image_id", "pixels"|"features", "references": list[list[str]]}``; the last batch may be short.
    ``vocab`` is accepted for symmetry with the train loader; references stay raw strings. After the pass,
    ``loader.coverage_warning(images scored)`` says when broken samples left images out.
    """
    _check_positive(batch_size=batch_size, world_size=world_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    shards, entry = split_shards(root, split, features_root)
    stream = EvalStream(shards=shards, decoder=sample_decoder(features_root, eval_transform(image_size)),
                        batch_size=batch_size, rank=rank, world_size=world_size, num_workers=max(1, num_workers),
                        broken=BrokenSampleCounter())
    return StreamLoader(stream, num_workers, int(entry["images"]), f"split {split!r} of {root}")
