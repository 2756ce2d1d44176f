"""Decoding: greedy vs beam 1, batched vs one image at a time, exact scores, exhaustive search, no-<eos> case."""
import copy
import itertools

import pytest
import torch

from modeling import Captioner, CaptionerConfig
from modeling.beam_search import beam_search

PAD, BOS, EOS = 0, 1, 2


def sharpened_model(vocab_size):
    """A small random model with large decoder weights: peaked, input-dependent outputs and varied lengths."""
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=vocab_size, encoder_weights="none", hidden_dim=64, attention_dim=32))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.decoder.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return sharpened_model(vocab_size=12)


@pytest.fixture(scope="module")
def two_word_model():
    return sharpened_model(vocab_size=5)  # words 3 and 4


@pytest.fixture(scope="module")
def features():
    return torch.randn(8, 2048, 2, 2, generator=torch.Generator().manual_seed(3))


def caption_lengths(tokens):
    """Generated words incl. <eos>; checks the format: no <bos>/<pad> inside a caption, only <pad> after <eos>."""
    lengths = []
    for row in tokens.tolist():
        length = row.index(EOS) + 1 if EOS in row else len(row)
        assert BOS not in row and PAD not in row[:length] and set(row[length:]) <= {PAD}
        lengths.append(length)
    return torch.tensor(lengths)


def teacher_forced_scores(model, features, tokens, length_penalty):
    """log p(caption) / length**penalty and attention weights, recomputed by a teacher-forced forward pass."""
    lengths = caption_lengths(tokens)
    captions = torch.cat([torch.full((len(tokens), 1), BOS), tokens], dim=1)
    with torch.no_grad():
        out = model(features, captions)
    mask = torch.arange(tokens.shape[1]) < lengths[:, None]
    token_log_probs = torch.log_softmax(out.logits, dim=-1).gather(2, tokens[..., None]).squeeze(-1)
    scores = (token_log_probs * mask).sum(dim=1) / lengths.float() ** length_penalty
    return scores, out.alphas * mask[..., None]


def test_beam_size_one_equals_greedy(model, features):
    greedy = model.generate(features, beam_size=1, max_len=12)
    with torch.no_grad():
        beam = beam_search(model.decoder, model.encode(features), beam_size=1, max_len=12, bos_id=BOS, eos_id=EOS,
                           pad_id=PAD)
    assert torch.equal(beam.tokens, greedy.tokens)
    torch.testing.assert_close(beam.scores, greedy.scores)
    torch.testing.assert_close(beam.alphas, greedy.alphas)
    lengths = caption_lengths(greedy.tokens)
    assert len(set(lengths.tolist())) > 2  # the check covers captions of different lengths


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_batch_decoded_together_equals_each_image_alone(model, features, length_penalty):
    batch = model.generate(features, beam_size=3, max_len=12, length_penalty=length_penalty)
    for image in range(len(features)):
        alone = model.generate(features[image:image + 1], beam_size=3, max_len=12, length_penalty=length_penalty)
        width = alone.tokens.shape[1]
        assert torch.equal(batch.tokens[image, :width], alone.tokens[0])
        assert (batch.tokens[image, width:] == PAD).all()
        torch.testing.assert_close(batch.scores[image], alone.scores[0])
        torch.testing.assert_close(batch.alphas[image, :width], alone.alphas[0])


@pytest.mark.parametrize("beam_size,length_penalty", [(1, 0.0), (3, 0.0), (3, 1.0)])
def test_scores_and_alphas_belong_to_the_returned_caption(model, features, beam_size, length_penalty):
    generation = model.generate(features, beam_size=beam_size, max_len=12, length_penalty=length_penalty)
    scores, alphas = teacher_forced_scores(model, features, generation.tokens, length_penalty)
    torch.testing.assert_close(generation.scores, scores, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(generation.alphas, alphas, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_wide_beam_finds_the_exhaustively_best_caption(two_word_model, length_penalty):
    model = two_word_model
    features = torch.randn(6, 2048, 1, 1, generator=torch.Generator().manual_seed(4))
    max_len = 4
    candidates = [list(words) + [EOS] for n in range(max_len) for words in itertools.product([3, 4], repeat=n)]
    padded = torch.tensor([c + [PAD] * (max_len - len(c)) for c in candidates])
    best = []
    for image in range(len(features)):
        repeated = features[image:image + 1].expand(len(candidates), -1, -1, -1)
        best.append(teacher_forced_scores(model, repeated, padded, length_penalty)[0].max())
    generation = model.generate(features, beam_size=40, max_len=max_len, length_penalty=length_penalty)
    torch.testing.assert_close(generation.scores, torch.stack(best), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_without_eos_the_best_unfinished_caption_of_max_len_is_returned(model, features, beam_size):
    model = copy.deepcopy(model)
    with torch.no_grad():
        model.decoder.output.bias[EOS] = -1e4
    generation = model.generate(features[:3], beam_size=beam_size, max_len=6)
    assert generation.tokens.shape == (3, 6) and generation.alphas.shape == (3, 6, 49)
    assert (generation.tokens != EOS).all()
    scores, _ = teacher_forced_scores(model, features[:3], generation.tokens, 0.0)
    torch.testing.assert_close(generation.scores, scores, rtol=1e-4, atol=1e-4)


def test_generate_uses_eval_mode_and_restores_the_training_flag(model, features):
    expected = model.generate(features, beam_size=3, max_len=8)
    model.train()
    try:
        first = model.generate(features, beam_size=3, max_len=8)
        assert model.training and model.decoder.dropout.training
        second = model.generate(features, beam_size=3, max_len=8)
    finally:
        model.eval()
    assert torch.equal(first.tokens, expected.tokens) and torch.equal(second.tokens, expected.tokens)
    assert not first.tokens.requires_grad and not first.scores.requires_grad


def test_invalid_decoding_arguments_are_rejected(model, features):
    with pytest.raises(ValueError, match="beam_size must be >= 1"):
        model.generate(features, beam_size=0)
    with pytest.raises(ValueError, match="length_penalty must be >= 0"):
        model.generate(features, beam_size=2, length_penalty=-1.0)
