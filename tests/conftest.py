"""Shared pytest setup (offline, one BLAS thread, deterministic) and fixtures: a tiny prepared synthetic dataset and a
tiny random-weight checkpoint on it, built once per session."""
import json
import os
from pathlib import Path

import pytest
import torch

from data_pipelines import prepare, synthetic
from data_pipelines.vocab import Vocabulary
from modeling import Captioner, CaptionerConfig

REPO = Path(__file__).resolve().parents[1]
TINY_IMAGE_SIZE = 48
TINY_TEST_IMAGES = 4

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One BLAS thread per process: on 2 shared cores, oversubscribed threads slow the suite down by up to 3x.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def build_tiny_checkpoint(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(checkpoint dir, prepared data dir, source images dir): 12 synthetic 48 px images, 4 of them in test.
    Built once per test session (the CLI test modules share it)."""
    root = tmp_path_factory.getbasetemp() / "tiny_cli_checkpoint"
    checkpoint, data = root / "checkpoint", root / "data"
    if (checkpoint / "trainer_state.json").is_file():
        return checkpoint, data, root / "synthetic" / "images"
    source = synthetic.generate(root / "synthetic", num_images=12, seed=0, image_size=TINY_IMAGE_SIZE,
                                val_fraction=0.1, test_fraction=0.34)
    prepare.run(["karpathy", "--json", source, "--out", data, "--image-size", TINY_IMAGE_SIZE, "--min-word-freq", 1,
                 "--shard-size", 4, "--workers", 1])
    vocab = Vocabulary.load(data / "vocab.json")
    torch.manual_seed(0)
    Captioner(CaptionerConfig(vocab_size=len(vocab), encoder_weights="none")).save_pretrained(checkpoint)
    vocab.save(checkpoint / "vocab.json")
    (checkpoint / "trainer_state.json").write_text(json.dumps({"train_config": {"data": {"image_size": TINY_IMAGE_SIZE}}}))
    return checkpoint, data, source.parent / "images"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(checkpoint dir, prepared data dir, source images dir); see ``build_tiny_checkpoint``."""
    return build_tiny_checkpoint(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_prepared(tiny_checkpoint) -> Path:
    """A prepared dataset (12 synthetic 48 px images in shards of 4: 7 train, 1 val, 4 test) with vocab.json."""
    return tiny_checkpoint[1]
