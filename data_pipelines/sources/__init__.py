"""Dataset sources: each turns one public caption format into ``Record``s (``common.Record``). A source module
declares its ``Source`` (``source.Source``: help line, flags, input paths, reader) once; ``SOURCES`` registers it under
the name ``showattend-prepare`` takes (docs/extending.md, "A dataset source")."""
from data_pipelines.registry import Registry

from . import coco, flickr, hf, karpathy, tabular, webdataset_shards
from .common import DataFormatError, Record, clean_records
from .source import Source

SOURCES = Registry("dataset source", {"karpathy": karpathy.SOURCE, "coco": coco.SOURCE, "flickr": flickr.SOURCE,
                                      "csv": tabular.CSV, "jsonl": tabular.JSONL, "hf": hf.SOURCE,
                                      "webdataset": webdataset_shards.SOURCE})

__all__ = ["SOURCES", "DataFormatError", "Record", "Source", "clean_records"]
