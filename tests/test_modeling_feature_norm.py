"""Encoder feature normalisation option: BatchNorm after the projection (default, unchanged weights layout) or
LayerNorm on each region's backbone vector (per-sample, so a region's features do not depend on the batch)."""
import pytest
import torch

from modeling import Captioner, CaptionerConfig


def make(feature_norm):
    torch.manual_seed(0)
    return Captioner(CaptionerConfig(vocab_size=12, encoder_weights="none", hidden_dim=16, attention_dim=16,
                                     embed_dim=16, feature_dim=16, feature_norm=feature_norm))


def test_default_is_batchnorm_with_the_original_state_dict_keys():
    keys = {k for k in make("batch").state_dict() if k.startswith("encoder.") and "backbone" not in k}
    assert keys == {"encoder.project.weight", "encoder.project.bias", "encoder.norm.weight", "encoder.norm.bias",
                    "encoder.norm.running_mean", "encoder.norm.running_var", "encoder.norm.num_batches_tracked"}
    assert CaptionerConfig(vocab_size=5).feature_norm == "batch"


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
