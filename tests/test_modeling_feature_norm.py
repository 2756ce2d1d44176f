"""Encoder feature normalisation: BatchNorm of the frozen backbone channels before the projection (default) or
LayerNorm on each region's backbone vector (per-sample, so a region's features do not depend on the batch)."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from modeling import Captioner, CaptionerConfig
from trainer.checkpointing.checkpoint import MODEL_FILES, STATE_FILE, CheckpointError, _file_digest, load_checkpoint


def make(feature_norm):
    torch.manual_seed(0)
    return Captioner(CaptionerConfig(vocab_size=12, encoder_weights="none", hidden_dim=16, attention_dim=16,
                                     embed_dim=16, feature_dim=16, feature_norm=feature_norm))


def test_default_standardises_backbone_channels_before_the_projection_without_affine_weights():
    keys = {k for k in make("batch").state_dict() if k.startswith("encoder.") and "backbone" not in k}
    assert keys == {"encoder.project.weight", "encoder.project.bias", "encoder.input_norm.running_mean",
                    "encoder.input_norm.running_var", "encoder.input_norm.num_batches_tracked"}
    assert CaptionerConfig(vocab_size=5).feature_norm == "batch"


def test_batchnorm_eval_mode_standardises_with_the_backbone_distribution_while_the_projection_trains():
    """The running statistics see only frozen features, so training the projection (as every optimizer step does)
    cannot make them lag: in eval mode they standardise with the true mean and spread of the backbone features."""
    model = make("batch").train()
    generator = torch.Generator().manual_seed(0)
    offset = 20 + torch.randn(1, 2048, 1, 1, generator=generator)  # per-channel offset shared by every image
    spread = 0.5 + torch.rand(1, 2048, 1, 1, generator=generator)

    def batch(size):
        return offset + spread * torch.randn(size, 2048, 4, 4, generator=generator)

    for _ in range(100):
        model.encode(batch(32))
        with torch.no_grad():
            model.encoder.project.weight.add_(0.01 * torch.randn_like(model.encoder.project.weight))
    model.eval()
    features = batch(64)
    exact = (features - offset) / spread
    gap = (model.encoder.input_norm(features) - exact).norm() / exact.norm()
    assert gap < 0.01, f"eval-mode standardisation is {gap:.1%} off the backbone distribution's"


def test_layernorm_normalises_each_region_over_backbone_channels_independently_of_the_batch():
    model = make("layer").train()
    features = 20 + torch.randn(4, 2048, 4, 4)  # frozen features: a large shared offset
    together = model.encode(features)
    alone = torch.cat([model.encode(features[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone)  # no batch statistics
    normalised = model.encoder.input_norm(features)
    torch.testing.assert_close(normalised.mean(dim=1), torch.zeros(4, 4, 4), atol=1e-4, rtol=0)
    assert together.shape == (4, 49, 16)


def test_layernorm_model_round_trips_through_save_and_load(tmp_path):
    model = make("layer").eval()
    model.save_pretrained(tmp_path)
    loaded = Captioner.from_pretrained(tmp_path).eval()
    features = torch.randn(2, 2048, 4, 4)
    assert loaded.config.feature_norm == "layer"
    torch.testing.assert_close(loaded.encode(features), model.encode(features))


def test_unknown_feature_norm_is_a_clear_error():
    with pytest.raises(ValueError, match="feature_norm must be one of"):
        CaptionerConfig(vocab_size=5, feature_norm="group")


def legacy_checkpoint(directory):
    """A save_pretrained directory as showattend wrote it with BatchNorm after the 1x1 conv (``encoder.norm.*``)."""
    model = make("batch")
    model.save_pretrained(directory)
    state = {k: v for k, v in load_file(str(directory / "model.safetensors")).items() if "input_norm" not in k}
    state.update({f"encoder.norm.{name}": torch.zeros(16) for name in ("weight", "bias", "running_mean", "running_var")})
    state["encoder.norm.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    save_file(state, str(directory / "model.safetensors"))
    return model


def test_a_checkpoint_with_batchnorm_after_the_projection_is_refused(tmp_path):
    model = legacy_checkpoint(tmp_path)
    with pytest.raises(ValueError, match=r"(?s)does not match the model described by.*encoder\.norm"):
        Captioner.from_pretrained(tmp_path)
    (tmp_path / "optimizer.safetensors").write_bytes(b"unused: the weights fail first")
    (tmp_path / "vocab.json").write_text("[]")
    files = {name: _file_digest(tmp_path / name) for name in MODEL_FILES}
    (tmp_path / STATE_FILE).write_text(json.dumps({"step": 1, "files": files}))
    with pytest.raises(CheckpointError, match=r"(?s)cannot be loaded into this model.*encoder\.norm"):
        load_checkpoint(tmp_path, model)
