"""Source readers: each turns one public caption format into ``Record``s (see ``common.Record``).

Every reader module has ``add_arguments(parser)`` for its CLI flags and ``read(args) -> (records, issues)``."""
from . import coco, flickr, hf, karpathy, tabular, webdataset_shards
from .common import DataFormatError, Record, clean_records

READERS = {"karpathy": karpathy, "coco": coco, "flickr": flickr, "csv": tabular, "jsonl": tabular, "hf": hf,
           "webdataset": webdataset_shards}

__all__ = ["READERS", "DataFormatError", "Record", "clean_records"]
