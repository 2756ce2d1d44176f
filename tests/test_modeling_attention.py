"""Additive attention: the formula, weights summing to 1, the gate variants, features projected once per image."""
import pytest
import torch

from modeling import Captioner, CaptionerConfig
from modeling.attention import AdditiveAttention


@pytest.mark.parametrize("gate", ["scalar", "vector", "none"])
def test_attention_matches_the_additive_formula(gate):
    torch.manual_seed(0)
    attention = AdditiveAttention(feature_dim=256, hidden_dim=512, attention_dim=256, gate=gate)
    features, hidden = torch.randn(3, 49, 256), torch.randn(3, 512)
    context, alpha = attention(features, attention.project_features(features), hidden)

    energy = torch.stack([
        torch.tanh(features[n] @ attention.feature_proj.weight.T + attention.feature_proj.bias
                   + attention.hidden_proj.weight @ hidden[n]) @ attention.score.weight[0]
        for n in range(3)])
    expected_alpha = torch.softmax(energy, dim=1)
    expected_context = (expected_alpha.unsqueeze(-1) * features).sum(dim=1)
    if gate != "none":
        expected_context = torch.sigmoid(attention.gate(hidden)) * expected_context
    torch.testing.assert_close(alpha, expected_alpha)
    torch.testing.assert_close(context, expected_context)
    assert alpha.shape == (3, 49) and context.shape == (3, 256)
    gate_width = {"scalar": 1, "vector": 256, "none": None}[gate]
    assert (attention.gate.out_features if attention.gate is not None else None) == gate_width


def test_unknown_gate_is_rejected():
    with pytest.raises(ValueError, match="attention gate must be one of"):
        AdditiveAttention(256, 512, 256, gate="sigmoid")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Captioner(CaptionerConfig(vocab_size=30, encoder_weights="none")).eval()


def test_model_attention_weights_sum_to_one_over_49_regions(model):
    captions = torch.randint(3, 30, (2, 3, 7))
    alphas = model(torch.randn(2, 3, 32, 32), captions).alphas
    assert alphas.shape == (6, 6, 49)
    assert (alphas >= 0).all()
    torch.testing.assert_close(alphas.sum(dim=-1), torch.ones(6, 6))
    generated = model.generate(torch.randn(2, 2048, 1, 1), beam_size=3, max_len=5)
    words = generated.tokens != model.config.pad_id  # the caption and its <eos>; alphas are zero after it
    torch.testing.assert_close(generated.alphas.sum(dim=-1), words.float())


def test_features_are_projected_once_per_forward_not_per_step(model):
    calls = []
    handle = model.decoder.attention.feature_proj.register_forward_hook(lambda *args: calls.append(1))
    try:
        model(torch.randn(2, 2048, 2, 2), torch.randint(3, 30, (2, 12)))
        assert len(calls) == 1
        model.generate(torch.randn(2, 2048, 2, 2), beam_size=3, max_len=8)
        assert len(calls) == 2
    finally:
        handle.remove()
