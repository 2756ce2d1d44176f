"""The training split's CIDEr-D document frequencies, cached next to the prepared data as ``cider_df.safetensors``
(in a local cache folder, ``data_pipelines.data_root.local_cache_dir``, when the data is at a URL).

Built once from the references in the split's shards (only the ``.json`` members are read), written atomically (a
temporary file renamed into place) and tagged with the prepared data's fingerprint: a cache made from other data is
rebuilt. A read-only data folder still works: the table is built in memory and a note is logged.

A mixture (several ``data_pipelines.data_sources.DataSource``) counts the train splits of all its sources together;
its images are ``<source name>/<image id>``, as in the training stream, and its table is cached where the caller says
(the SCST loop: in the run's ``output_dir``), tagged with every source's fingerprint.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Sequence

from data_pipelines.data_root import DataRoot, local_cache_dir
from data_pipelines.data_sources import DataSource
from data_pipelines.manifest import dataset_fingerprint
from data_pipelines.shard_members import split_samples
from trainer.scst.document_frequency import VERSION, CiderDocumentFrequencies

logger = logging.getLogger(__name__)
CACHE_NAME = "cider_df.safetensors"


def split_references(data_root: str | Path, split: str = "train", prefix: str = "") -> tuple[list[str], list[list[str]]]:
    """(image ids with ``prefix``, raw reference captions) of every sample of ``split``, in shard order."""
    samples = list(split_samples(data_root, split))
    return [prefix + sample.image_id for sample in samples], [sample.captions for sample in samples]


def cache_fingerprint(data_root: str | Path, split: str) -> str:
    """Identifies what a cache was built from: the prepared data, the split and the table format."""
    return f"{dataset_fingerprint(data_root)}:{split}:v{VERSION}"


def _mixture_references(sources: Sequence[DataSource], split: str) -> tuple[list[str], list[list[str]]]:
    image_ids, references = [], []
    for source in sources:
        ids, refs = split_references(source.root, split, prefix=f"{source.name}/")
        image_ids += ids
        references += refs
    return image_ids, references


def load_document_frequencies(data: str | Path | Sequence[DataSource], split: str = "train",
                              cache_path: str | Path | None = None) -> CiderDocumentFrequencies:
    """The cached table when it matches the prepared data, else a freshly built one (saved when possible). ``data``:
    a prepared dataset's root, or the sources of a run (several need ``cache_path``)."""
    sources = [DataSource(str(data))] if isinstance(data, (str, Path)) else list(data)
    if len(sources) == 1:
        root = DataRoot(sources[0].root)
        fingerprint = cache_fingerprint(sources[0].root, split)
        default_path = local_cache_dir(root, "cider_df") / CACHE_NAME if root.remote else Path(root.join(CACHE_NAME))
    elif cache_path is None:
        raise ValueError("the document frequencies of several sources need a cache_path")
    else:
        fingerprint = "+".join(f"{source.name}={cache_fingerprint(source.root, split)}" for source in sources)
    path = Path(cache_path) if cache_path is not None else default_path
    if path.is_file():
        try:
            table = CiderDocumentFrequencies.load(path)
        except ValueError as error:
            logger.warning("rebuilding %s: %s", path, error)
        else:
            if table.fingerprint == fingerprint:
                return table
            logger.info("rebuilding %s: it was made from other data (%s, now %s)", path, table.fingerprint,
                        fingerprint)
    image_ids, references = (split_references(sources[0].root, split) if len(sources) == 1
                             else _mixture_references(sources, split))
    table = CiderDocumentFrequencies.from_references(image_ids, references, fingerprint=fingerprint)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(descriptor)
        try:
            table.save(temporary)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        logger.info("wrote CIDEr-D document frequencies of %d %s images to %s", table.num_images, split, path)
    except OSError as error:
        logger.warning("could not cache CIDEr-D document frequencies at %s (%s); using them from memory", path, error)
    return table
