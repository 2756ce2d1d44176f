"""Decoder forward: plain teacher forcing against a hand-written reference, free running, per-token mixing."""
import pytest
import torch

from modeling import Captioner, CaptionerConfig

VOCAB = 40


def make_model(**overrides):
    torch.manual_seed(0)
    return Captioner(CaptionerConfig(vocab_size=VOCAB, encoder_weights="none", **overrides)).eval()


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def argmax_model():
    return make_model(scheduled_sampling="argmax")


def random_captions(rows, length, seed=1):
    generator = torch.Generator().manual_seed(seed)
    captions = torch.randint(3, VOCAB, (rows, length), generator=generator)
    captions[:, 0] = 1
    return captions


def teacher_forced_reference(model, x, captions):
    """Show, Attend and Tell written out step by step with the model's own submodules."""
    decoder, attention = model.decoder, model.decoder.attention
    features = model.encode(x)
    mean = features.mean(dim=1)
    hidden, cell = torch.tanh(decoder.init_h(mean)), torch.tanh(decoder.init_c(mean))
    logits, alphas = [], []
    for t in range(captions.shape[1] - 1):
        energy = attention.score(torch.tanh(attention.feature_proj(features)
                                            + attention.hidden_proj(hidden)[:, None])).squeeze(-1)
        alpha = torch.softmax(energy, dim=1)
        context = torch.sigmoid(attention.gate(hidden)) * (alpha[..., None] * features).sum(dim=1)
        step_input = torch.cat([context, decoder.embedding(captions[:, t])], dim=1)
        hidden, cell = decoder.lstm(step_input, (hidden, cell))
        logits.append(decoder.output(hidden))
        alphas.append(alpha)
    return torch.stack(logits, dim=1), torch.stack(alphas, dim=1)


def test_ratio_one_equals_the_reference_and_draws_no_random_numbers(model):
    x, captions = torch.randn(3, 3, 32, 32), random_captions(3, 8)
    rng_before = torch.get_rng_state()
    out = model(x, captions, teacher_forcing_ratio=1.0)
    assert torch.equal(torch.get_rng_state(), rng_before)
    expected_logits, expected_alphas = teacher_forced_reference(model, x, captions)
    torch.testing.assert_close(out.logits, expected_logits)
    torch.testing.assert_close(out.alphas, expected_alphas)


@pytest.mark.parametrize("fixture", ["model", "argmax_model"])
def test_ratio_zero_ignores_ground_truth_after_the_first_step(fixture, request):
    chosen = request.getfixturevalue(fixture)
    features = torch.randn(4, 2048, 2, 2)
    captions = random_captions(4, 9, seed=1)
    perturbed = captions.clone()
    perturbed[:, 1:] = random_captions(4, 9, seed=2)[:, 1:]
    assert not torch.equal(captions[:, 1:], perturbed[:, 1:])

    outputs = []
    for tokens in (captions, perturbed):
        torch.manual_seed(5)
        outputs.append(chosen(features, tokens, teacher_forcing_ratio=0.0).logits)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)
    forced = [chosen(features, tokens).logits for tokens in (captions, perturbed)]
    assert not torch.allclose(forced[0][:, 1:], forced[1][:, 1:])


def test_intermediate_ratio_mixes_ground_truth_and_predictions_per_token(argmax_model):
    rows, ratio = 256, 0.5
    features = torch.randn(rows, 2048, 1, 1)
    captions = random_captions(rows, 4)
    first_prediction = argmax_model(features, captions).logits[:, 0].argmax(dim=-1)
    captions[:, 1] = (first_prediction + 1) % VOCAB  # ground truth != prediction, so the two inputs differ
    forced = argmax_model(features, captions, teacher_forcing_ratio=1.0).logits[:, 1]
    free = argmax_model(features, captions, teacher_forcing_ratio=0.0).logits[:, 1]

    torch.manual_seed(11)
    mixed = argmax_model(features, captions, teacher_forcing_ratio=ratio).logits[:, 1]
    torch.manual_seed(11)
    expected_prediction_rows = torch.rand(rows) >= ratio  # the first draw of the forward, at step 1

    used_prediction = (mixed - free).abs().amax(dim=-1) < 1e-6
    used_ground_truth = (mixed - forced).abs().amax(dim=-1) < 1e-6
    assert torch.equal(used_prediction, ~used_ground_truth)
    assert torch.equal(used_prediction, expected_prediction_rows)
    assert 0.35 < used_prediction.float().mean() < 0.65


def test_several_captions_per_image_share_one_encoder_pass(model):
    images, captions = torch.randn(2, 3, 32, 32), random_captions(6, 7).view(2, 3, 7)
    calls = []
    handle = model.encoder.backbone.register_forward_hook(lambda *args: calls.append(1))
    try:
        out = model(images, captions)
    finally:
        handle.remove()
    assert len(calls) == 1
    assert out.logits.shape == (6, 6, VOCAB) and out.alphas.shape == (6, 6, 49)
    for image in range(2):
        for k in range(3):
            single = model(images[image:image + 1], captions[image, k:k + 1]).logits[0]
            torch.testing.assert_close(out.logits[image * 3 + k], single, rtol=1e-4, atol=1e-5)


def test_model_dimensions_follow_the_design(model):
    assert model.encode(torch.randn(1, 3, 32, 32)).shape == (1, 49, 256)
    assert model.decoder.embedding.embedding_dim == 256
    assert model.decoder.embedding.padding_idx == 0
    assert model.decoder.lstm.input_size == 512 and model.decoder.lstm.hidden_size == 512
    assert model(torch.randn(2, 2048, 2, 2), random_captions(2, 5)).logits.shape == (2, 4, VOCAB)


def test_invalid_arguments_are_rejected(model):
    with pytest.raises(ValueError, match="teacher_forcing_ratio"):
        model(torch.randn(1, 2048, 1, 1), random_captions(1, 4), teacher_forcing_ratio=1.5)
    with pytest.raises(ValueError, match=r"captions must be \(B, T\) or \(B, K, T\)"):
        model(torch.randn(2, 2048, 1, 1), random_captions(3, 4))
