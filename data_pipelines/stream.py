"""DDP-safe WebDataset streaming of prepared shards (images or cached backbone features).

Train stream, after open_clip's ``get_wds_dataset``: shard list -> per-epoch shard shuffle (seed, epoch) -> split by
rank (explicit rank/world_size) -> split by DataLoader worker -> read tars (broken members counted and skipped) ->
sample shuffle buffer seeded by (seed, epoch, rank, worker), drained after each pass over the worker's shards ->
decode .jpg/.json/.safetensors only -> transform -> tokenize -> padded batches. Each worker cycles its shards until it
has yielded exactly ``batches_per_worker`` batches (computed from the manifest's image count, never from what a worker
happens to hold), so every rank yields ``len(loader)`` batches per epoch and DDP never waits on a rank that ran dry.
The stream is a pure function of its arguments: rebuild epoch e and skip the consumed batches to resume exactly.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from data_pipelines.data_root import DataRoot
from data_pipelines.manifest import read_manifest
from data_pipelines.stream_samples import (
    BrokenSampleCounter,
    SampleDecoder,
    batched,
    collate_eval,
    collate_train,
    decode_samples,
    read_tar_samples,
    stream_seed,
)
from data_pipelines.transforms import eval_transform, train_transform

__all__ = ["TrainLoaderOptions", "build_train_loader", "build_eval_loader", "check_splits", "StreamLoader"]


def _worker_index(expected_workers: int) -> int:
    """This DataLoader worker's index, checked against the worker count the stream was built for."""
    info = get_worker_info()
    workers, index = (1, 0) if info is None else (info.num_workers, info.id)
    if workers != expected_workers:
        raise RuntimeError(f"stream was built for {expected_workers} DataLoader worker(s) per rank but runs in "
                           f"{workers}; iterate it through the loader returned by build_*_loader")
    return index


def _cycle_shards(shards: list[str], resampled: bool, rng: random.Random) -> Iterator[list[str]]:
    """Endless passes over a worker's shards (resampled: each pass draws len(shards) shards with replacement)."""
    while True:
        yield [rng.choice(shards) for _ in shards] if resampled else shards


@dataclass(eq=False)
class TrainStream(IterableDataset):
    """One rank's training stream for one epoch; see the module docstring."""

    shards: list[str]
    vocab: object
    decoder: SampleDecoder
    batch_size: int
    batches_per_worker: int
    captions_per_image: int
    max_caption_len: int | None
    seed: int
    epoch: int
    rank: int
    world_size: int
    num_workers: int
    resampled: bool
    shuffle_buffer: int
    broken: BrokenSampleCounter

    def __post_init__(self) -> None:
        super().__init__()

    def worker_shards(self, worker: int) -> list[str]:
        """Shards this (rank, worker) reads this epoch: all of them when resampled, else its disjoint share."""
        if self.resampled:
            return list(self.shards)
        order = list(self.shards)
        random.Random(stream_seed(self.seed, self.epoch, "shards")).shuffle(order)  # same on every rank
        return order[self.rank::self.world_size][worker::self.num_workers]

    def _decoded_samples(self, worker: int, shard_rng: random.Random, buffer_rng: random.Random,
                         generator: torch.Generator) -> Iterator[dict]:
        """Decoded samples, pass after pass over the worker's shards; the shuffle buffer drains after each pass (no
        image comes round again before all were seen). A pass that decodes nothing is an error, not an endless loop."""
        shuffle = wds.shuffle(self.shuffle_buffer, min(100, self.shuffle_buffer), rng=buffer_rng)
        for shard_pass in _cycle_shards(self.worker_shards(worker), self.resampled, shard_rng):
            decoded, skipped_before = 0, self.broken.count
            raw = shuffle(read_tar_samples(shard_pass, self.broken))
            for sample in decode_samples(raw, self.decoder, self.broken, generator):
                decoded += 1
                yield sample
            if decoded == 0:
                raise RuntimeError(f"rank {self.rank} worker {worker}: no sample of shards {sorted(set(shard_pass))} "
                                   f"decodes ({self.broken.count - skipped_before} skipped as broken, see the log)")

    def __iter__(self) -> Iterator[dict]:
        worker = _worker_index(self.num_workers)
        seed = stream_seed(self.seed, self.epoch, self.rank, worker)
        shard_rng, buffer_rng, caption_rng = (random.Random(stream_seed(seed, name))
                                              for name in ("shards", "buffer", "captions"))
        generator = torch.Generator().manual_seed(stream_seed(seed, "transform"))
        samples = self._decoded_samples(worker, shard_rng, buffer_rng, generator)
        batches = batched(samples, self.batch_size, keep_partial=False)
        for _ in range(self.batches_per_worker):
            yield collate_train(next(batches), self.vocab, self.captions_per_image, self.max_caption_len, caption_rng)


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
        worker = _worker_index(self.num_workers)
        slots, slot = self.world_size * self.num_workers, self.rank * self.num_workers + worker
        if len(self.shards) >= slots:  # disjoint shard subsets, as split_by_node then split_by_worker
            raw = read_tar_samples(self.shards[self.rank::self.world_size][worker::self.num_workers], self.broken)
        else:  # too few shards to share: every slot reads all of them and keeps every slots-th sample
            raw = (s for i, s in enumerate(read_tar_samples(self.shards, self.broken)) if i % slots == slot)
        for batch in batched(decode_samples(raw, self.decoder, self.broken), self.batch_size, keep_partial=True):
            yield collate_eval(batch)


class StreamLoader(DataLoader):
    """A DataLoader over a stream that knows its batch count, how many broken samples it skipped and (eval) how many
    images its split has."""

    def __init__(self, stream: TrainStream | EvalStream, num_workers: int, num_batches: int | None,
                 images_in_split: int | None = None, split_name: str = ""):
        # Own generator: the DataLoader draws its worker base seed from it instead of the trainer's global RNG.
        super().__init__(stream, batch_size=None, num_workers=num_workers, persistent_workers=False,
                         generator=torch.Generator().manual_seed(0))
        self.num_batches = num_batches
        self.images_in_split, self.split_name = images_in_split, split_name

    def coverage_warning(self, scored: int) -> str | None:
        """None when ``scored`` (distinct images, gathered over all ranks) is every image the manifest lists for
        the split, else a line saying "N of M images" and why."""
        if self.images_in_split is None or scored >= self.images_in_split:
            return None
        return (f"scored {scored} of {self.images_in_split} images of {self.split_name}: "
                f"{self.images_in_split - scored} could not be read ({self.broken_samples} broken sample(s) skipped by "
                f"this process, see the warnings above); the metrics are over the {scored} only")

    def __len__(self) -> int:
        if self.num_batches is None:
            raise TypeError("an eval loader has no fixed length (ranks may get different counts)")
        return self.num_batches

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


def _split_shards(root, split: str, features_root: str | Path | None) -> tuple[list[str], dict]:
    """Shard locations (paths or URLs) and manifest entry of ``split``, read from the feature cache when one is given (the caller checks
    once, with ``data_pipelines.feature_cache.check_feature_cache``, that the cache was made from ``root``)."""
    source = DataRoot(root if features_root is None else features_root)
    check_splits(source, [split])
    entry = read_manifest(source)["splits"][split]
    return [source.join(name) for name in entry["shards"]], entry


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _decoder(features_root, transform: Callable) -> SampleDecoder:
    return SampleDecoder(None if features_root is not None else transform, use_features=features_root is not None)


@dataclass(frozen=True)
class TrainLoaderOptions:
    """What a training stream reads and how it batches; the same for every epoch and rank of a run."""

    batch_size: int  # images per rank per batch
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


def build_train_loader(root, vocab, options: TrainLoaderOptions, epoch: int = 0, rank: int = 0,
                       world_size: int = 1, broken: BrokenSampleCounter | None = None) -> StreamLoader:
    """Training loader for one epoch of one rank; ``len(loader)`` batches, the same on every rank.

    ``broken``: a counter to share between the epochs' loaders (one count and one rate-limited log for the run).

    Batches: ``{"image_id": list[str], "pixels" (B,3,S,S) | "features" (B,2048,h,w), "captions": (B,K,T)}``.
    """
    batch_size, num_workers, split = options.batch_size, options.num_workers, options.split
    features_root, resampled = options.features_root, options.resampled
    _check_positive(batch_size=batch_size, world_size=world_size, captions_per_image=options.captions_per_image,
                    shuffle_buffer=options.shuffle_buffer)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    if options.augment and features_root is not None:
        raise ValueError("augment=True needs images: a feature cache holds fixed, unaugmented backbone features")
    shards, entry = _split_shards(root, split, features_root)
    workers = max(1, num_workers)
    if not resampled and len(shards) < workers * world_size:
        raise ValueError(f"{split}: {len(shards)} shard(s) cannot feed {world_size} rank(s) x {workers} worker(s) = "
                         f"{world_size * workers} readers; re-run prepare with a smaller --shard-size, use fewer "
                         f"workers, or resampled=True")
    batches_per_rank = int(entry["images"]) // (batch_size * world_size)
    if batches_per_rank == 0:
        raise ValueError(f"{split}: {entry['images']} image(s) do not fill one batch of {batch_size} on each of "
                         f"{world_size} rank(s)")
    batches_per_worker = math.ceil(batches_per_rank / workers)
    transform = train_transform(options.image_size, options.augment)
    stream = TrainStream(shards=shards, vocab=vocab, decoder=_decoder(features_root, transform),
                         batch_size=batch_size, batches_per_worker=batches_per_worker,
                         captions_per_image=options.captions_per_image, max_caption_len=options.max_caption_len,
                         seed=options.seed, epoch=epoch, rank=rank, world_size=world_size, num_workers=workers,
                         resampled=resampled, shuffle_buffer=options.shuffle_buffer,
                         broken=broken or BrokenSampleCounter())
    return StreamLoader(stream, num_workers, batches_per_worker * workers)


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
    shards, entry = _split_shards(root, split, features_root)
    stream = EvalStream(shards=shards, decoder=_decoder(features_root, eval_transform(image_size)),
                        batch_size=batch_size, rank=rank, world_size=world_size, num_workers=max(1, num_workers),
                        broken=BrokenSampleCounter())
    return StreamLoader(stream, num_workers, None, int(entry["images"]), f"split {split!r} of {root}")
