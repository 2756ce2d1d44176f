"""modeling.sampling: caption format and masks, log-probabilities equal to a teacher-forced pass, greedy = generate."""
import pytest
import torch

from modeling import Captioner, CaptionerConfig
from modeling.sampling import sample_captions

PAD, BOS, EOS = 0, 1, 2


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=9, encoder_weights="none", hidden_dim=32, attention_dim=16,
                                      feature_dim=16, embed_dim=16, dropout=0.0))
    with torch.no_grad():  # larger decoder weights: varied caption lengths, some hitting max_len
        for parameter in model.decoder.parameters():
            parameter.mul_(4.0)
    return model.eval()


@pytest.fixture(scope="module")
def features(model):
    with torch.no_grad():
        return model.encode(torch.randn(5, 2048, 2, 2, generator=torch.Generator().manual_seed(1)))


def sample(model, features, **kwargs):
    config = model.config
    options = {"max_len": 8, "num_samples": 4, "generator": torch.Generator().manual_seed(0), **kwargs}
    return sample_captions(model.decoder, features, bos_id=config.bos_id, eos_id=config.eos_id,
                           pad_id=config.pad_id, **options)


def test_format_and_mask_stop_after_eos(model, features):
    out = sample(model, features)
    rows, steps = out.tokens.shape
    assert rows == 20 and steps <= 8 and out.alphas.shape == (rows, steps, features.shape[1])
    ended = 0
    for row, mask in zip(out.tokens.tolist(), out.mask.tolist()):
        length = row.index(EOS) + 1 if EOS in row else len(row)
        ended += EOS in row
        assert mask == [True] * length + [False] * (steps - length)
        assert set(row[length:]) <= {PAD} and BOS not in row[:length] and PAD not in row[:length]
    assert 0 < ended < rows  # both finished and max_len captions occur
    after = ~out.mask
    assert (out.log_probs[after] == 0).all() and (out.entropy[after] == 0).all() and (out.alphas[after] == 0).all()
    assert (out.log_probs[out.mask] < 0).all() and (out.entropy[out.mask] > 0).all()


def test_log_probs_equal_a_teacher_forced_pass_and_rows_are_image_major(model, features):
    out = sample(model, features)
    captions = torch.cat([torch.full((len(out.tokens), 1), BOS), out.tokens], dim=1)
    with torch.no_grad():
        logits, _ = model.decoder(features.repeat_interleave(4, dim=0), captions)
    log_probs = torch.log_softmax(logits.index_fill(2, torch.tensor([BOS, PAD]), float("-inf")), dim=-1)
    expected = torch.where(out.mask, log_probs.gather(2, out.tokens.unsqueeze(-1)).squeeze(-1), 0.0)
    torch.testing.assert_close(out.log_probs, expected, rtol=0, atol=1e-5)


def test_gradients_flow_to_the_decoder(model, features):
    out = sample(model, features)
    (out.log_probs.sum() + out.entropy.sum()).backward()
    grads = [p.grad for p in model.decoder.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    model.zero_grad(set_to_none=True)


def test_greedy_equals_generate_and_temperature_controls_entropy(model, features):
    greedy = sample(model, features, num_samples=1, greedy=True)
    images = torch.randn(5, 2048, 2, 2, generator=torch.Generator().manual_seed(1))
    generated = model.generate(images, beam_size=1, max_len=8)
    assert torch.equal(greedy.tokens, generated.tokens)
    hot, cold = sample(model, features, temperature=3.0), sample(model, features, temperature=0.3)
    assert hot.entropy[:, 0].mean() > cold.entropy[:, 0].mean()
    again = sample(model, features)
    assert torch.equal(again.tokens, sample(model, features).tokens)  # same generator seed, same captions
    with pytest.raises(ValueError, match="temperature"):
        sample(model, features, temperature=0.0)
