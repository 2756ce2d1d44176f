"""Decoder.forward (length-sorted, shrinking active set, packed output) against a straightforward loop over every
row and step: same logits, alphas, loss and gradients, with teacher forcing 1 and < 1 and dropout, same seed."""
import pytest
import torch

from modeling import CaptionerConfig
from modeling.decoder import Decoder, decode_lengths, sample_words
from trainer.training.losses import caption_loss

VOCAB, PAD, BOS, EOS = 60, 0, 1, 2
WORDS = torch.tensor([7, 2, 4, 7, 0, 5, 2, 6])  # words per caption; T = 9 positions, so 7 words fill a row


def make_decoder(scheduled_sampling="sample", dropout=0.3):
    torch.manual_seed(0)
    config = CaptionerConfig(vocab_size=VOCAB, encoder_weights="none", attention_gate="vector", dropout=dropout,
                             scheduled_sampling=scheduled_sampling)
    return Decoder(config).train()


def mixed_length_batch():
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(len(WORDS), 5, 256, generator=generator)
    captions = torch.randint(3, VOCAB, (len(WORDS), 9), generator=generator)
    captions[:, 0] = BOS
    positions = torch.arange(9)
    captions = torch.where(positions == WORDS[:, None] + 1, EOS, captions)
    captions = torch.where(positions > WORDS[:, None] + 1, PAD, captions)
    return features, captions


def straightforward_loop(decoder, features, captions, teacher_forcing_ratio):
    """Every row at every step, in the original order, drawing rand(N) [+ rand(N)] then the dropout mask per step."""
    rows = captions.shape[0]
    projected = decoder.attention.project_features(features)
    state = decoder.init_state(features)
    logits, alphas = [], []
    for t in range(captions.shape[1] - 1):
        words = captions[:, t]
        if t > 0 and teacher_forcing_ratio < 1.0:
            use_prediction = torch.rand(rows) >= teacher_forcing_ratio
            uniforms = torch.rand(rows) if decoder.scheduled_sampling == "sample" else None
            words = torch.where(use_prediction, decoder.predict(logits[-1].detach(), uniforms), words)
        step_logits, state, alpha = decoder.step(words, state, features, projected)
        logits.append(step_logits)
        alphas.append(alpha)
    return torch.stack(logits, dim=1), torch.stack(alphas, dim=1)


def loss_and_gradients(decoder, outputs, captions):
    loss = caption_loss(*outputs, captions, PAD, attention_lambda=1.0).total
    decoder.zero_grad()
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in decoder.named_parameters()}


@pytest.mark.parametrize("scheduled_sampling,ratio", [("sample", 1.0), ("sample", 0.5), ("argmax", 0.5),
                                                      ("sample", 0.0)])
def test_packed_forward_equals_the_straightforward_loop(scheduled_sampling, ratio):
    decoder = make_decoder(scheduled_sampling)
    features, captions = mixed_length_batch()
    real = captions[:, 1:] != PAD

    torch.manual_seed(7)
    logits, alphas = decoder(features, captions, ratio)
    rng_after_packed = torch.get_rng_state()
    packed_loss, packed_grads = loss_and_gradients(decoder, (logits, alphas), captions)
    torch.manual_seed(7)
    expected_logits, expected_alphas = straightforward_loop(decoder, features, captions, ratio)
    rng_after_loop = torch.get_rng_state()
    expected_loss, expected_grads = loss_and_gradients(decoder, (expected_logits, expected_alphas), captions)

    assert torch.equal(rng_after_packed, rng_after_loop)  # same draws, so the next batch sees the same RNG
    torch.testing.assert_close(logits[real], expected_logits[real], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alphas[real], expected_alphas[real], rtol=1e-5, atol=1e-6)
    assert (logits[~real] == 0).all() and (alphas[~real] == 0).all()  # steps after the last word are not computed
    torch.testing.assert_close(packed_loss, expected_loss, rtol=1e-5, atol=1e-6)
    for name, gradient in expected_grads.items():
        torch.testing.assert_close(packed_grads[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_predictions_are_fed_back_where_the_draw_says_so():
    decoder = make_decoder("argmax", dropout=0.0)
    features, captions = mixed_length_batch()
    forced = decoder(features, captions, 1.0)[0]
    torch.manual_seed(3)
    mixed = decoder(features, captions, 0.0)[0]
    assert not torch.allclose(forced[WORDS >= 2, 1], mixed[WORDS >= 2, 1])  # ratio 0 really changes the inputs


def test_same_seed_gives_identical_outputs_and_different_seeds_differ():
    decoder = make_decoder()
    features, captions = mixed_length_batch()
    runs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        runs.append(decoder(features, captions, 0.5)[0])
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_decode_lengths_count_steps_up_to_the_last_word():
    captions = torch.tensor([[BOS, 5, 6, EOS, PAD], [BOS, PAD, PAD, PAD, PAD], [BOS, 5, PAD, 6, EOS]])
    assert decode_lengths(captions, PAD).tolist() == [3, 0, 4]


def test_sample_words_follows_the_softmax_and_never_picks_impossible_words():
    logits = torch.log(torch.tensor([[0.0, 0.2, 0.5, 0.3], [0.9, 0.0, 0.1, 0.0]]))
    draws = 20_000
    uniforms = torch.rand(draws * 2, generator=torch.Generator().manual_seed(0))
    words = sample_words(logits.repeat(draws, 1), uniforms).view(draws, 2)
    frequencies = torch.stack([torch.bincount(words[:, row], minlength=4).float() / draws for row in range(2)])
    torch.testing.assert_close(frequencies, torch.softmax(logits, dim=-1), atol=0.015, rtol=0)
    assert (frequencies[logits == float("-inf")] == 0).all()
    assert sample_words(logits, torch.zeros(2)).tolist() == [1, 0]  # the first possible word
    assert sample_words(logits, torch.full((2,), 1 - 1e-7)).tolist() == [3, 2]  # the last possible word
