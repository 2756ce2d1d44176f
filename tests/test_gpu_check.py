"""benchmarks.gpu_check: the MFU formula, the peak table, the epoch estimate, and the whole check at toy sizes on the
CPU (--smoke), so none of its code paths can rot while no GPU runs it."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_data_stream import write_dataset

from benchmarks.gpu_check.device import parse_peak_overrides, table_peaks
from benchmarks.gpu_check.report import epoch_estimate
from benchmarks.gpu_check.training import SMOKE_SHAPES, coco_like_batch, training_flops
from benchmarks.gpu_check.xe_scst import mixture_overrides
from data_pipelines.data_sources import DataSource
from data_pipelines.vocab import Vocabulary
from modeling import CaptionerConfig
from trainer.config.schema import load_config

REPO = Path(__file__).resolve().parents[1]


def test_mixture_stages_train_both_presets_with_their_caches_and_one_vocabulary(tmp_path):
    sources = {name: (write_dataset(tmp_path / name / "prepared", {"train": [2]}), tmp_path / name / "features")
               for name in ("shapes", "toys")}
    config = load_config(REPO / "configs" / "demo.yaml", mixture_overrides(tmp_path, sources))
    assert config.data_sources() == [DataSource(str(prepared), 1.0, name, str(features))
                                     for name, (prepared, features) in sources.items()]
    assert config.data.vocab == str(tmp_path / "mixture_vocab.json") and len(Vocabulary.load(config.data.vocab)) > 4


def test_training_flops_follow_the_documented_formula():
    config = CaptionerConfig(vocab_size=100, encoder_weights="none", backbone_channels=64, feature_dim=8, embed_dim=4,
                             attention_dim=6, hidden_dim=10, grid_size=7)
    captions = torch.tensor([[[1, 5, 6, 2, 0], [1, 7, 2, 0, 0]]])  # one image, 2 captions: 3 + 2 predicted tokens
    R, C, F, E, A, H, V = 49, 64, 8, 4, 6, 10, 100
    per_step = 2 * E * 4 * H + 2 * (F + H) * 4 * H + 2 * H * A + 2 * R * A + 2 * R * F + 2 * H * 1 + 2 * H * V
    expected = 3 * (2 * R * C * F + 2 * (2 * R * F * A + 4 * F * H) + 5 * per_step)
    assert training_flops(config, 1, captions) == expected


def test_coco_like_captions_are_bos_words_eos_then_padding():
    config = SMOKE_SHAPES.model_config()
    features, captions = coco_like_batch(SMOKE_SHAPES, 6, config, torch.device("cpu"))
    assert features.shape == (6, SMOKE_SHAPES.backbone_channels, 7, 7)
    assert (captions[..., 0] == config.bos_id).all() and (captions == config.eos_id).sum(-1).eq(1).all()
    words = (captions[..., 1:] >= 4).sum(-1)
    assert words.min() >= SMOKE_SHAPES.min_words and words.max() <= SMOKE_SHAPES.max_words


@pytest.mark.parametrize("name, bf16", [("NVIDIA H100 PCIe", 756.0), ("NVIDIA H100 80GB HBM3", 989.4),
                                        ("NVIDIA H200", 989.4), ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA A10", 125.0),
                                        ("NVIDIA L40S", 362.1), ("NVIDIA L4", 121.0)])
def test_peak_table_matches_the_most_specific_name(name, bf16):
    assert table_peaks(name)[0]["bf16"] == bf16


def test_peak_overrides_and_their_errors():
    assert parse_peak_overrides("bf16=900,fp32=60") == {"bf16": 900.0, "fp32": 60.0}
    assert table_peaks("Some Future GPU") == ({}, "no table entry for Some Future GPU")
    for bad in ("bf16", "int8=1", "fp16=-3", "fp32=x"):
        with pytest.raises(ValueError, match="expected DTYPE=TFLOPS"):
            parse_peak_overrides(bad)


def test_epoch_estimate_from_the_fastest_row():
    rows = [{"dtype": "fp32", "mode": "eager", "micro_batch_images": 32, "captions_per_s": 1000.0},
            {"dtype": "bf16", "mode": "compile", "micro_batch_images": 128, "captions_per_s": 566_435 / 60},
            {"dtype": "fp16", "mode": "eager", "micro_batch_images": 512, "skipped": "time budget spent"}]
    estimate = epoch_estimate(rows)
    assert estimate["from_row"]["dtype"] == "bf16" and estimate["minutes_1_gpu"] == 1.0
    assert estimate["minutes_8_gpus"] == round(1 / (8 * 0.9), 3)
    assert estimate["feature_gb_per_epoch"] == 22.7


@pytest.mark.slow  # a few minutes on 2 loaded cores: seven interpreters (train, evaluate, pytest) start
def test_smoke_run_writes_every_section(tmp_path):
    command = [sys.executable, "-m", "benchmarks.gpu_check", "--smoke", "--json", str(tmp_path / "check.json"),
               "--md", str(tmp_path / "check.md"), "--budget-scale", "4"]  # the budgets are an idle machine's
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads((tmp_path / "check.json").read_text())
    assert {"device", "train", "beam", "features", "tests", "xe_scst", "epoch_estimate"} <= set(result)
    assert result["device"]["type"] == "cpu" and result["smoke"] is True

    def positive(value) -> bool:
        return isinstance(value, (int, float)) and math.isfinite(value) and value > 0

    assert {(row["dtype"], row["mode"]) for row in result["train"]} == {
        (dtype, mode) for dtype in ("fp32", "bf16", "fp16") for mode in ("eager", "compile")}
    for row in result["train"]:
        assert positive(row.get("captions_per_s")) and positive(row.get("mfu")) and row["mfu"] < 1, row
    assert [row["dtype"] for row in result["beam"]] == ["fp32", "bf16"]
    assert all(positive(row.get("images_per_s")) for row in result["beam"]), result["beam"]
    assert len(result["features"]) == 3
    for row in result["features"]:
        assert positive(row.get("images_per_s")) and 0 <= row["loader_share"] <= 1, row
    assert result["tests"]["deselected"] > 0 and result["tests"]["cases"] == {}  # no CUDA: every GPU test deselected
    for stage in ("xe", "xe_scst"):
        assert math.isfinite(result["xe_scst"]["stages"][stage]["test_cider"])
    assert positive(result["epoch_estimate"]["minutes_1_gpu"])
    assert "## Decoder training" in (tmp_path / "check.md").read_text()
