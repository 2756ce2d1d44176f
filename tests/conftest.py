"""Shared pytest setup: keep every test offline, single-threaded enough for 2 cores, and deterministic."""
import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One BLAS thread per process: on 2 shared cores, oversubscribed threads slow the suite down by up to 3x.
os.environ.setdefault("OMP_NUM_THREADS", "1")
