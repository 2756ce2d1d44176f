"""trainer.checkpointing (checkpoint, rng_state): pickle-free round trips, corruption detection, compatibility checks."""
import json
import random

import numpy as np
import pytest
import torch

from data_pipelines.vocab import Vocabulary
from modeling import Captioner, CaptionerConfig
from trainer.checkpointing.checkpoint import (
    CheckpointError,
    check_compatible,
    load_checkpoint,
    prune_checkpoints,
    step_checkpoint_dir,
    verify_checkpoint,
    write_checkpoint,
)
from trainer.checkpointing.rng_state import capture_rng_state, restore_rng_state
from trainer.checkpointing.run_dir import find_resume_checkpoint

VOCAB = Vocabulary(["a", "red", "circle", "square"])


def tiny_model(**overrides) -> Captioner:
    sizes = dict(vocab_size=len(VOCAB), encoder_weights="none", feature_dim=8, embed_dim=8, attention_dim=8,
                 hidden_dim=16)
    return Captioner(CaptionerConfig(**{**sizes, **overrides}))


def trained(model):
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2, betas=(0.8, 0.95))
    features = torch.randn(2, 2048, 2, 2)
    captions = torch.tensor([[1, 4, 5, 2], [1, 6, 2, 0]])
    model(features, captions).logits.sum().backward()
    optimizer.step()
    return optimizer


def test_round_trip_restores_model_and_optimizer(tmp_path):
    torch.manual_seed(0)
    model = tiny_model()
    optimizer = trained(model)
    write_checkpoint(step_checkpoint_dir(tmp_path, 1), model, optimizer, VOCAB, {"step": 1})
    restored = tiny_model()
    restored_optimizer = torch.optim.AdamW(restored.trainable_parameters(), lr=1.0)
    state = load_checkpoint(step_checkpoint_dir(tmp_path, 1), restored, restored_optimizer)
    assert state["step"] == 1
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        assert torch.equal(a, b), name
    saved, loaded = optimizer.state_dict(), restored_optimizer.state_dict()
    assert loaded["param_groups"][0]["betas"] == (0.8, 0.95) and loaded["param_groups"][0]["lr"] == 1e-2
    for param, values in saved["state"].items():
        for name, value in values.items():
            assert torch.equal(value, loaded["state"][param][name]), (param, name)
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".bin", ".pt", ".pkl", ".pth")]


def test_rng_state_json_round_trip():
    state = json.loads(json.dumps(capture_rng_state()))
    expected = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng_state(state)
    assert random.random() == expected[0] and np.random.rand() == expected[1]
    assert torch.equal(torch.rand(3), expected[2])


def test_corrupt_and_truncated_detected_latest_falls_back(tmp_path):
    model = tiny_model()
    optimizer = trained(model)
    for step in (2, 4, 6):
        write_checkpoint(step_checkpoint_dir(tmp_path, step), model, optimizer, VOCAB, {"step": step})
    weights = step_checkpoint_dir(tmp_path, 6) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="model.safetensors: truncated"):
        verify_checkpoint(step_checkpoint_dir(tmp_path, 6))
    optimizer_file = step_checkpoint_dir(tmp_path, 4) / "optimizer.safetensors"
    data = bytearray(optimizer_file.read_bytes())
    data[-1] ^= 0xFF
    optimizer_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="optimizer.safetensors: corrupt"):
        verify_checkpoint(step_checkpoint_dir(tmp_path, 4))
    assert find_resume_checkpoint("latest", tmp_path) == step_checkpoint_dir(tmp_path, 2)
    (step_checkpoint_dir(tmp_path, 2) / "trainer_state.json").write_text("{\"step\": ")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        verify_checkpoint(step_checkpoint_dir(tmp_path, 2))
    with pytest.raises(CheckpointError, match="all 3 checkpoint"):
        find_resume_checkpoint("latest", tmp_path)


def test_incompatible_checkpoint_refused(tmp_path):
    model = tiny_model()
    write_checkpoint(tmp_path / "ckpt", model, trained(model), VOCAB, {"step": 1})
    other_shape = tiny_model(hidden_dim=24).config.to_dict()
    with pytest.raises(CheckpointError, match=r"model\.hidden_dim: checkpoint 16, this run 24"):
        check_compatible(tmp_path / "ckpt", other_shape, VOCAB)
    other_vocab = Vocabulary(["a", "blue", "circle", "square"])
    with pytest.raises(CheckpointError, match="vocabulary: .*first difference at word #1"):
        check_compatible(tmp_path / "ckpt", model.config.to_dict(), other_vocab)
    notes = check_compatible(tmp_path / "ckpt", tiny_model(dropout=0.1).config.to_dict(), VOCAB)
    assert notes == ["model.dropout: checkpoint 0.5, this run 0.1"]


def test_prune_keeps_newest(tmp_path):
    model = tiny_model()
    optimizer = trained(model)
    for step in (1, 2, 3):
        write_checkpoint(step_checkpoint_dir(tmp_path, step), model, optimizer, VOCAB, {"step": step})
    write_checkpoint(step_checkpoint_dir(tmp_path, 3), model, optimizer, VOCAB, {"step": 3, "again": True})
    assert verify_checkpoint(step_checkpoint_dir(tmp_path, 3))["again"] is True
    prune_checkpoints(tmp_path, keep_last=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000002", "step_00000003"]
