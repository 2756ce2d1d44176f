"""Training stream whose data order does not depend on the number of processes, with resume at the tar-member level.

One optimizer step trains ``lanes`` micro-batches (``trainer.training.batch_plan``). Lane ``j``'s micro-batch is the
concatenation of one piece of ``micro_batch_size / readers`` images from each of its ``readers`` readers; reader
``(j, w)`` reads the shards ``order[j * readers + w :: lanes * readers]`` of the epoch's shard order (shuffled by seed
and epoch), shuffles their samples with a buffer seeded by ``(seed, epoch, j, w)`` and cycles them until it has yielded
``steps_per_epoch = images // global_batch_size`` pieces. So step ``s`` of epoch ``e`` trains the same images whether
one process accumulates every lane or ``lanes`` processes train one each: the order is a function of (seed, epoch,
global batch, micro-batch, readers), and ``readers`` is ``data.num_workers`` (at least 1).

Process ``r`` trains lanes ``r*A .. r*A+A-1``. Its DataLoader worker ``w`` serves reader ``w`` of each of those lanes,
piece by piece in (step, lane) order; DataLoader takes batches from its workers round-robin, so ``readers``
consecutive pieces are the ``readers`` pieces of one lane's micro-batch, concatenated in the main process.

Resume at step ``s`` of an epoch: every reader drops its first ``s * piece_size`` tar samples as raw member bytes,
before any JPEG decode or feature load, and the random choices that follow (captions per piece, augmentation per
sample) are seeded by position, so the batches after the resume point are those of a straight run (exact unless a
dropped sample was undecodable: a broken sample is counted and replaced by the next one, shifting its reader by one).

A mixture of several prepared datasets (``data_pipelines.data_sources``) is read the same way, source by source: reader
``(j, w)`` reads its share of every source's shards (each source's own shard order), and draws the source of each
sample position from a generator seeded by ``(seed, epoch, j, w)`` with probabilities proportional to the weights; each
source's samples then come from its own buffer, pass after pass, so a source runs out and restarts independently of
the others. An epoch is ``sum of the sources' images // global_batch_size`` steps. A resume replays the source draws of
the positions it skips (no sample read) and drops as many raw samples of each source. A mixture's image ids are
``<source name>/<image id>`` (two datasets may use the same ids; SCST looks references up by id). The first source is
read with the seeds of a one-source stream (``source_seed``), so a run on one dataset trains the batches it did before.
"""
from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset

from data_pipelines.data_sources import DataSource
from data_pipelines.stream import TrainLoaderOptions, sample_decoder, split_shards, worker_index
from data_pipelines.stream_samples import BrokenSampleCounter, SampleDecoder, collate_train, read_tar_samples, stream_seed
from data_pipelines.transforms import train_transform

__all__ = ["build_lane_loader", "LaneLoader"]


def _cycle_shards(shards: list[str], resampled: bool, rng: random.Random) -> Iterator[list[str]]:
    """Endless passes over a reader's shards (resampled: each pass draws len(shards) shards with replacement)."""
    while True:
        yield [rng.choice(shards) for _ in shards] if resampled else shards


def source_seed(seed: int, source: int) -> int:
    """The seed of source ``source``'s shard order and buffer: the first source's is the one-source stream's seed."""
    return seed if source == 0 else stream_seed(seed, "source", source)


@dataclass(eq=False)
class LaneStream(IterableDataset):
    """Pieces of this process's lanes from ``start_step`` to the end of the epoch; see the module docstring.
    ``sources[k]``: the shard locations of source ``k``, sampled at the rate ``weights[k] / sum(weights)``."""

    sources: tuple[list[str], ...]
    weights: tuple[float, ...]
    names: tuple[str, ...]  # a mixture's image ids are prefixed "<name>/"
    vocab: object
    decoder: SampleDecoder
    piece_size: int
    steps_per_epoch: int
    start_step: int
    my_lanes: tuple[int, ...]
    lanes: int
    readers: int
    captions_per_image: int
    max_caption_len: int | None
    seed: int
    epoch: int
    resampled: bool
    shuffle_buffer: int
    broken: BrokenSampleCounter

    def __post_init__(self) -> None:
        super().__init__()

    def reader_shards(self, lane: int, reader: int, source: int = 0) -> list[str]:
        if self.resampled:
            return list(self.sources[source])
        order = list(self.sources[source])
        random.Random(source_seed(stream_seed(self.seed, self.epoch, "shards"), source)).shuffle(order)
        return order[lane * self.readers + reader::self.lanes * self.readers]

    def _raw_samples(self, lane: int, reader: int, source: int, seed: int) -> Iterator[tuple[int, dict]]:
        """(pass number, undecoded sample) of ``source``, pass after pass over the reader's shards (the buffer drains
        at the end of each pass, so no image comes round again before all were seen)."""
        shard_rng, buffer_rng = random.Random(stream_seed(seed, "shards")), random.Random(stream_seed(seed, "buffer"))
        shuffle = wds.shuffle(self.shuffle_buffer, min(100, self.shuffle_buffer), rng=buffer_rng)
        shards = self.reader_shards(lane, reader, source)
        for number, shard_pass in enumerate(_cycle_shards(shards, self.resampled, shard_rng)):
            yielded = 0
            for raw in shuffle(read_tar_samples(shard_pass, self.broken)):
                yielded += 1
                yield number, raw
            if yielded == 0:
                raise RuntimeError(f"lane {lane} reader {reader}: shards {sorted(set(shard_pass))} hold no readable "
                                   f"sample")

    def _source_choices(self, seed: int) -> Iterator[int]:
        """The source of each sample position of a reader: drawn with probabilities proportional to the weights."""
        if len(self.weights) == 1:
            return itertools.repeat(0)
        rng, bounds = random.Random(stream_seed(seed, "sources")), list(itertools.accumulate(self.weights))
        last = len(bounds) - 1
        return (min(last, bisect.bisect_right(bounds, rng.random() * bounds[-1])) for _ in itertools.count())

    def _decoded(self, raw: dict, generator: torch.Generator, source: int) -> dict:
        sample = self.decoder(raw, generator)
        if len(self.sources) > 1:
            sample["image_id"] = f"{self.names[source]}/{sample['image_id']}"
        return sample

    def _pieces(self, lane: int, reader: int) -> Iterator[dict]:
        seed = stream_seed(self.seed, self.epoch, "lane", lane, reader)
        raws = [self._raw_samples(lane, reader, source, source_seed(seed, source)) for source in range(len(self.sources))]
        choices = self._source_choices(seed)
        position = self.start_step * self.piece_size
        for _ in range(position):  # resume: skip consumed samples as tar members, never decoded
            next(raws[next(choices)])
        good_pass: list[int | None] = [None] * len(raws)  # per source: the last pass in which a sample decoded
        for step in range(self.start_step, self.steps_per_epoch):
            samples = []
            while len(samples) < self.piece_size:
                source = next(choices)
                number, sample = next(raws[source])
                good_pass[source] = number if good_pass[source] is None else good_pass[source]
                if number > good_pass[source] + 1:
                    raise RuntimeError(f"lane {lane} reader {reader}: a whole pass over shards "
                                       f"{self.reader_shards(lane, reader, source)} decoded nothing (see the "
                                       f"broken-sample log)")
                generator = torch.Generator().manual_seed(stream_seed(seed, "transform", position))
                position += 1
                try:
                    samples.append(self._decoded(sample, generator, source))
                    good_pass[source] = number
                except Exception as error:  # noqa: BLE001 - an undecodable sample is skipped, never fatal
                    self.broken(error)
            yield collate_train(samples, self.vocab, self.captions_per_image, self.max_caption_len,
                                random.Random(stream_seed(seed, "captions", step)))

    def __iter__(self) -> Iterator[dict]:
        reader = worker_index(self.readers)
        lanes = [self._pieces(lane, reader) for lane in self.my_lanes]
        for _ in range(self.start_step, self.steps_per_epoch):
            for pieces in lanes:
                yield next(pieces)


def _concatenate(pieces: list[dict], pad_id: int, pin_memory: bool = False) -> dict:
    """One micro-batch from its readers' pieces (captions re-padded to the longest), in page-locked memory when
    ``pin_memory`` (the concatenation is the batch's one copy, so the device copy can be non-blocking)."""
    key = "features" if "features" in pieces[0] else "pixels"
    length = max(piece["captions"].shape[-1] for piece in pieces)
    captions = [torch.nn.functional.pad(piece["captions"], (0, length - piece["captions"].shape[-1]), value=pad_id)
                for piece in pieces]

    def cat(tensors: list[torch.Tensor]) -> torch.Tensor:
        if not pin_memory:
            return torch.cat(tensors)
        shape = (sum(tensor.shape[0] for tensor in tensors), *tensors[0].shape[1:])
        return torch.cat(tensors, out=torch.empty(shape, dtype=tensors[0].dtype, pin_memory=True))

    return {"image_id": [image_id for piece in pieces for image_id in piece["image_id"]],
            key: cat([piece[key] for piece in pieces]), "captions": cat(captions)}


class LaneLoader:
    """This process's micro-batches from ``start_step`` to the end of the epoch: for each step, one per lane."""

    def __init__(self, stream: LaneStream, num_workers: int, pad_id: int):
        self.stream, self.pad_id = stream, pad_id
        self.pin_memory = torch.cuda.is_available()  # the pieces are pinned when concatenated, not by the DataLoader
        # Own generator: the DataLoader draws its worker base seed from it instead of the trainer's global RNG.
        self.loader = DataLoader(stream, batch_size=None, num_workers=num_workers, persistent_workers=False,
                                 generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return (self.stream.steps_per_epoch - self.stream.start_step) * len(self.stream.my_lanes)

    def __iter__(self) -> Iterator[dict]:
        pieces = iter(self.loader)  # now, not at the first next(): workers start where the caller iterates us
        return (_concatenate([next(pieces) for _ in range(self.stream.readers)], self.pad_id, self.pin_memory)
                for _ in range(len(self)))

    @property
    def broken_samples(self) -> int:
        return self.stream.broken.count


def _as_sources(data, features_root) -> list[DataSource]:
    """``data`` as a list of sources: a root (folder or URL; ``features_root`` its cache) or a sequence of
    ``DataSource`` (each with its own cache; ``features_root`` must then be None)."""
    if isinstance(data, (str, Path)):
        return [DataSource(str(data), features=None if features_root is None else str(features_root))]
    if features_root is not None:
        raise ValueError("options.features_root is for one dataset; a mixture's sources carry their own features")
    sources = list(data)
    if len({source.features is None for source in sources}) > 1:
        raise ValueError("either every source of a mixture has a feature cache or none has")
    return sources


def build_lane_loader(data: str | Path | Sequence[DataSource], vocab, options: TrainLoaderOptions,
                      global_batch_size: int, lanes: range, epoch: int = 0, start_step: int = 0,
                      broken: BrokenSampleCounter | None = None) -> LaneLoader:
    """Loader of ``lanes`` (this process's, from ``trainer.training.batch_plan.BatchPlan.lanes_of``) for one epoch, with
    micro-batches of ``options.batch_size`` images; ``broken`` may be shared between the epochs of a run. ``data``: a
    prepared dataset's root, or the sources of a mixture (``data_pipelines.data_sources``).

    Batches: ``{"image_id": list[str], "pixels" (B,3,S,S) | "features" (B,2048,h,w), "captions": (B,K,T)}``; for each
    step from ``start_step``, one batch per lane in lane order.
    """
    micro_batch_size, num_workers, split = options.batch_size, options.num_workers, options.split
    sources, resampled = _as_sources(data, options.features_root), options.resampled
    features_root = sources[0].features
    if micro_batch_size < 1 or global_batch_size % micro_batch_size:
        raise ValueError(f"global batch {global_batch_size} is not a multiple of the micro-batch {micro_batch_size}")
    total_lanes, readers = global_batch_size // micro_batch_size, max(1, num_workers)
    if micro_batch_size % readers:
        raise ValueError(f"micro-batch {micro_batch_size} is not divisible by data.num_workers={num_workers}: each "
                         f"worker reads an equal share of every micro-batch")
    if not (lanes and 0 <= lanes[0] and lanes[-1] < total_lanes):
        raise ValueError(f"lanes {list(lanes)} are not within the {total_lanes} lanes of a global batch")
    if options.augment and features_root is not None:
        raise ValueError("augment=True needs images: a feature cache holds fixed, unaugmented backbone features")
    source_shards, images = [], 0
    for source in sources:
        shards, entry = split_shards(source.root, split, source.features)
        where = split if len(sources) == 1 else f"{source.root}: {split}"
        if not resampled and len(shards) < total_lanes * readers:
            raise ValueError(f"{where}: {len(shards)} shard(s) cannot feed {total_lanes} lane(s) (global batch "
                             f"{global_batch_size} / micro-batch {micro_batch_size}) x {readers} worker(s) = "
                             f"{total_lanes * readers} readers; re-run prepare with a smaller --shard-size, use fewer "
                             f"workers or a larger micro-batch, or resampled=True")
        source_shards.append(shards)
        images += int(entry["images"])
    steps_per_epoch = images // global_batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{split}: {images} image(s) do not fill one global batch of {global_batch_size}")
    if not 0 <= start_step < steps_per_epoch:
        raise ValueError(f"start_step {start_step} is outside the epoch's {steps_per_epoch} steps")
    transform = train_transform(options.image_size, options.augment)
    stream = LaneStream(sources=tuple(source_shards), weights=tuple(float(source.weight) for source in sources),
                        names=tuple(source.name or str(index) for index, source in enumerate(sources)),
                        vocab=vocab, decoder=sample_decoder(features_root, transform),
                        piece_size=micro_batch_size // readers, steps_per_epoch=steps_per_epoch, start_step=start_step,
                        my_lanes=tuple(lanes), lanes=total_lanes, readers=readers,
                        captions_per_image=options.captions_per_image, max_caption_len=options.max_caption_len,
                        seed=options.seed, epoch=epoch, resampled=resampled, shuffle_buffer=options.shuffle_buffer,
                        broken=broken or BrokenSampleCounter())
    return LaneLoader(stream, num_workers, vocab.pad_id)
