"""The prepared datasets a run trains on: one (``data.root``) or a weighted mixture (``data.sources``).

A ``DataSource`` is a prepared dataset (a folder or URL written by ``data_pipelines.prepare``), an optional feature
cache of it, the rate at which the training stream samples it and the name its validation scores are logged under.
``mixture_fingerprint`` identifies what a run reads (every source's data, weight and name), so a resumed run refuses a
changed source; for one source it is that dataset's fingerprint, as before mixtures existed.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

from data_pipelines.data_root import DataRoot
from data_pipelines.manifest import dataset_fingerprint
from data_pipelines.vocab import Vocabulary

# A source's name becomes a TensorBoard tag part (val/<name>/CIDEr) and a key prefix: a plain word.
SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True)
class DataSource:
    """One prepared dataset of a run: ``root`` (folder or URL), ``features`` (its feature cache or None), ``weight``
    (relative sampling rate) and ``name`` (``val/<name>/...``)."""

    root: str
    weight: float = 1.0
    name: str = ""
    features: str | None = None


def default_source_name(root: str | Path) -> str:
    """The last part of a root's path or URL, made a plain word (``/data/coco/`` -> ``coco``); never a query or its
    tokens (``?sig=...``), since the name is logged and shared."""
    last = urlsplit(str(DataRoot(root))).path.rstrip("/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9_-]", "_", last).lstrip("_-")[:64]
    return name or "source"


def named_sources(sources: Sequence[DataSource], where: str = "data.sources") -> list[DataSource]:
    """``sources`` with default names filled in, checked: at least one, positive finite weights, plain unique names
    (ValueError naming ``where[i]`` and the value)."""
    if not sources:
        raise ValueError(f"{where}: no source given")
    named = []
    for index, source in enumerate(sources):
        if not source.root:
            raise ValueError(f"{where}[{index}].root is required: a directory written by data_pipelines.prepare")
        if not (math.isfinite(source.weight) and source.weight > 0):
            raise ValueError(f"{where}[{index}].weight is {source.weight!r}: expected a positive number")
        name = source.name or default_source_name(source.root)
        if not SOURCE_NAME.fullmatch(name):
            raise ValueError(f"{where}[{index}].name is {name!r:.80}: expected a plain name (letters, digits, '_', '-')")
        named.append(DataSource(str(source.root), float(source.weight), name, source.features))
    names = [source.name for source in named]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise ValueError(f"{where}[{index}].name {name!r} is also the name of {where}[{names.index(name)}]; give "
                             f"each source its own name")
    if len({source.features is None for source in named}) > 1:
        raise ValueError(f"{where}: either every source has a feature cache ('features') or none has (a batch holds "
                         f"images or features, not both)")
    return named


def mixture_fingerprint(sources: Sequence[DataSource]) -> str:
    """What the training stream reads: for one source its dataset fingerprint, for several a sha256 of every source's
    name, weight and dataset fingerprint, in order."""
    if len(sources) == 1:
        return dataset_fingerprint(sources[0].root)
    digest = hashlib.sha256()
    for source in sources:
        digest.update(f"{source.name}:{source.weight!r}:{dataset_fingerprint(source.root)};".encode())
    return digest.hexdigest()


def mixture_vocabulary(sources: Sequence[DataSource], vocab_path: str | None) -> Vocabulary:
    """The run's vocabulary: ``vocab_path`` when given, else the sources' ``vocab.json`` when they all hold the same
    one; sources whose vocabularies differ need ``vocab_path`` (ValueError saying how to build it)."""
    if vocab_path:
        return Vocabulary.load(vocab_path)
    locations = [DataRoot(source.root).join("vocab.json") for source in sources]
    vocabularies = [Vocabulary.load(location) for location in locations]
    differing = [location for location, vocab in zip(locations, vocabularies) if vocab.itos != vocabularies[0].itos]
    if differing:
        roots = " ".join(source.root for source in sources)
        raise ValueError(f"{differing[0]} is not the vocabulary of {locations[0]}: a mixture trains one vocabulary; "
                         f"build it from every source's train captions with showattend-prepare vocab --from {roots} "
                         f"--out VOCAB.json and set data.vocab=VOCAB.json")
    return vocabularies[0]
