"""Sample-level stages of the shard stream: tar reading that skips broken members, decoding of only our own
extensions (.jpg / .json / .safetensors), caption choice, tokenisation and padded batching.

Everything random takes an explicit ``random.Random`` / ``torch.Generator`` seeded by ``stream_seed``, so a stream is
a pure function of its arguments and never touches (or depends on) the global RNGs.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import random
from typing import Callable, Iterable, Iterator

import torch
from PIL import Image
from safetensors.torch import load as load_safetensors
from webdataset.tariterators import group_by_keys, tar_file_expander

from data_pipelines.data_root import RemoteDataError, open_location
from data_pipelines.image_files import SHARD_FORMATS

logger = logging.getLogger(__name__)

FEATURE_TENSOR_NAME = "features"  # the one tensor stored in KEY.safetensors by data_pipelines.features
_OUR_EXTENSIONS = ("jpg", "json", "safetensors")


def stream_seed(*parts: object) -> int:
    """A 63-bit seed from any tuple of values, identical in every process (unlike ``hash``)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class BrokenSampleCounter:
    """Exception handler for the tar reader and the decoder: counts (across worker processes), continues.

    Rate-limited: the first ``log_first`` skips are logged one by one, later ones only as a running count when it
    reaches 100, 1000, 10000, ... (a stream of broken samples must not flood the log). ``take()`` returns the skips
    since its previous call, for a per-interval ``data/broken_samples`` scalar; one counter can serve many loaders."""

    def __init__(self, log_first: int = 10) -> None:
        self._count = multiprocessing.Value("q", 0)
        self.log_first = log_first
        self._taken = 0

    def __call__(self, error: BaseException) -> bool:
        with self._count.get_lock():
            self._count.value += 1
            count = self._count.value
        if count <= self.log_first:
            logger.warning("skipping broken sample (%d): %s", count, error)
        elif count == self.log_first + 1 or (count >= 100 and str(count).rstrip("0") == "1"):
            logger.warning("%d broken samples skipped so far (only the first %d are logged one by one; the count "
                           "is logged at 100, 1000, ...); latest: %s", count, self.log_first, error)
        return True

    @property
    def count(self) -> int:
        return self._count.value

    def take(self) -> int:
        """Samples skipped since the previous ``take()`` (in this process's view of the shared count)."""
        count = self.count
        skipped, self._taken = count - self._taken, count
        return skipped


def _is_our_member(name: str) -> bool:
    return name.rsplit(".", 1)[-1].lower() in _OUR_EXTENSIONS


def _opened_shards(locations: Iterable[str], on_error: Callable) -> Iterator[dict]:
    """``{"url", "stream"}`` per shard, opened here (never by webdataset, whose opener runs ``pipe:`` names as
    commands) and closed once its samples were read; a shard that cannot be opened is a broken sample."""
    for location in locations:
        try:
            stream = open_location(location)
        except RemoteDataError:
            raise
        except Exception as error:  # noqa: BLE001 - a missing/unreadable local shard is skipped like a broken member
            on_error(error)
            continue
        try:
            yield {"url": location, "stream": stream}
        finally:
            stream.close()


def read_tar_samples(shard_paths: Iterable[str], on_error: BrokenSampleCounter) -> Iterator[dict]:
    """Raw samples ``{"__key__", "json": bytes, "jpg"|"safetensors": bytes}`` of the given shards (paths or URLs,
    ``data_pipelines.data_root``), in order. Broken members and truncated downloads are counted by ``on_error`` and
    skipped; a remote shard that stays unreadable raises ``RemoteDataError`` (the run must stop, not skip data)."""

    def handler(error: BaseException) -> bool:
        if isinstance(error, RemoteDataError):
            raise error
        return on_error(error)

    files = tar_file_expander(_opened_shards(shard_paths, handler), handler=handler, select_files=_is_our_member)
    return group_by_keys(files, handler=handler)


class SampleDecoder:
    """Raw tar sample -> ``{"image_id", "captions": [raw str], "pixels"|"features": FloatTensor}``.

    Only ``.jpg`` (PIL, RGB), ``.json`` and our ``.safetensors`` feature payload are decoded: no pickle, no torch.load.
    """

    def __init__(self, transform: Callable | None, use_features: bool):
        self.transform, self.use_features = transform, use_features

    def __call__(self, raw: dict, generator: torch.Generator | None = None) -> dict:
        where = f"{raw.get('__url__')}: sample {raw.get('__key__')!r}"
        payload = "safetensors" if self.use_features else "jpg"
        missing = [ext for ext in ("json", payload) if ext not in raw]
        if missing:
            raise ValueError(f"{where} has no .{' / .'.join(missing)} member (has {sorted(k for k in raw if not k.startswith('__'))})")
        meta = json.loads(raw["json"])
        captions = meta.get("captions")
        if not isinstance(captions, list) or not captions or not all(isinstance(c, str) for c in captions):
            raise ValueError(f"{where}: key 'captions' must be a non-empty list of strings, got {captions!r}")
        sample = {"image_id": str(meta.get("image_id", raw["__key__"])), "captions": captions}
        if self.use_features:
            tensors = load_safetensors(raw["safetensors"])
            if FEATURE_TENSOR_NAME not in tensors:
                raise ValueError(f"{where}: .safetensors has no tensor {FEATURE_TENSOR_NAME!r} (has {sorted(tensors)})")
            sample["features"] = tensors[FEATURE_TENSOR_NAME].float()
        else:
            with Image.open(io.BytesIO(raw["jpg"]), formats=SHARD_FORMATS) as image:
                sample["pixels"] = self.transform(image.convert("RGB"), generator)
        return sample


def decode_samples(raw_samples: Iterable[dict], decoder: SampleDecoder, on_error: BrokenSampleCounter,
                   generator: torch.Generator | None = None) -> Iterator[dict]:
    """Decode each raw sample; a sample that fails (corrupt JPEG, bad JSON, missing member) is counted and skipped."""
    for raw in raw_samples:
        try:
            yield decoder(raw, generator)
        except Exception as error:  # noqa: BLE001 - any undecodable member is skipped, never fatal
            on_error(error)


def choose_captions(captions: list[str], k: int, rng: random.Random) -> list[str]:
    """``k`` captions of one image: without replacement when it has >= k, else all of them then random repeats."""
    if len(captions) >= k:
        return rng.sample(captions, k)
    return rng.sample(captions, len(captions)) + [rng.choice(captions) for _ in range(k - len(captions))]


def pad_token_ids(rows: list[list[int]], pad_id: int) -> torch.Tensor:
    """Right-pad token id lists to the longest one: LongTensor (N, T)."""
    length = max(len(row) for row in rows)
    padded = torch.full((len(rows), length), pad_id, dtype=torch.long)
    for index, row in enumerate(rows):
        padded[index, : len(row)] = torch.tensor(row, dtype=torch.long)
    return padded


def _stack_inputs(samples: list[dict]) -> dict:
    key = "features" if "features" in samples[0] else "pixels"
    return {"image_id": [s["image_id"] for s in samples], key: torch.stack([s[key] for s in samples])}


def collate_train(samples: list[dict], vocab, captions_per_image: int, max_caption_len: int | None,
                  rng: random.Random) -> dict:
    """``{"image_id", "pixels"|"features", "captions": LongTensor (B, K, T) padded with vocab.pad_id}``."""
    rows = [vocab.encode(caption, max_len=max_caption_len)
            for sample in samples for caption in choose_captions(sample["captions"], captions_per_image, rng)]
    captions = pad_token_ids(rows, vocab.pad_id).view(len(samples), captions_per_image, -1)
    return {**_stack_inputs(samples), "captions": captions}


def collate_eval(samples: list[dict]) -> dict:
    """``{"image_id", "pixels"|"features", "references": list[list[str]]}`` (all raw reference captions)."""
    return {**_stack_inputs(samples), "references": [list(s["captions"]) for s in samples]}


def model_input(batch: dict) -> torch.Tensor:
    """The batch's backbone features when it carries them, else its normalised pixels."""
    return batch["features"] if "features" in batch else batch["pixels"]


def batched(samples: Iterable[dict], batch_size: int, keep_partial: bool) -> Iterator[list[dict]]:
    """Group samples into lists of ``batch_size``; the last short group only when ``keep_partial``."""
    batch: list[dict] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch and keep_partial:
        yield batch
