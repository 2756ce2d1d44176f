"""Batched beam search against plain references: candidate selection vs a full log-softmax, the whole search vs a
one-image, list-based beam search, on a model whose captions end at different steps (images leave the batch)."""
import copy

import pytest
import torch
from test_modeling_generate import BOS, EOS, PAD, sharpened_model

from modeling.beam_search import beam_search, best_candidates, row_top_k


def model_with_eos_bias(vocab_size, eos_bias):
    """The sharpened test model with <eos> made more or less likely, so that searches end at different steps."""
    model = sharpened_model(vocab_size)
    with torch.no_grad():
        model.decoder.output.bias[EOS] += eos_bias
    return model


@pytest.fixture(scope="module")
def small_vocab_model():
    return model_with_eos_bias(12, -0.5)


@pytest.fixture(scope="module")
def large_vocab_model():  # large enough for the chunked per-row top-k
    return model_with_eos_bias(6000, 2.0)


def reference_beam_search(decoder, features, beam_size, max_len, length_penalty):
    """One image (1, R, D): every beam's full log-softmax, all width * vocab continuations sorted, lists of words.
    Returns (score, words, alphas, steps searched)."""
    projected = decoder.attention.project_features(features)
    state = decoder.init_state(features)
    beams = [(0.0, [], [])]  # (score, words, alphas)
    best = (float("-inf"), None, None)
    for t in range(max_len):
        words = torch.tensor([beam[1][-1] if beam[1] else BOS for beam in beams])
        width = len(beams)
        logits, state, alpha = decoder.step(words, state, features.expand(width, -1, -1),
                                            projected.expand(width, -1, -1))
        log_probs = torch.log_softmax(logits, dim=-1)
        log_probs[:, [BOS, PAD]] = float("-inf")
        scores = (torch.tensor([beam[0] for beam in beams]).unsqueeze(1) + log_probs).flatten()
        order = scores.argsort(descending=True, stable=True)[:2 * beam_size].tolist()
        vocab = log_probs.shape[1]
        candidates = [(scores[i].item(), i // vocab, i % vocab) for i in order]
        for score, b, w in candidates[:beam_size]:
            if w == EOS and score / (t + 1) ** length_penalty > best[0]:
                best = (score / (t + 1) ** length_penalty, beams[b][1] + [EOS], beams[b][2] + [alpha[b]])
        kept = [c for c in candidates if c[2] != EOS][:beam_size]
        rows = torch.tensor([b for _, b, _ in kept])
        state = (state[0][rows], state[1][rows])
        beams = [(score, beams[b][1] + [w], beams[b][2] + [alpha[b]]) for score, b, w in kept]
        if best[0] >= beams[0][0] / max_len ** length_penalty:
            break
    if best[1] is None:
        best = (beams[0][0] / len(beams[0][1]) ** length_penalty, beams[0][1], beams[0][2])
    return *best, t + 1


@pytest.mark.parametrize("width", [100, 101, 130])  # whole chunks, a partial last chunk, one more than 4*k chunks
def test_chunked_row_top_k_equals_topk(width):
    values = torch.randn(7, width, generator=torch.Generator().manual_seed(width))
    values[0, :40] = float("-inf")  # masked words (<bos>, <pad>) and a row whose best sit in one chunk
    values[1, 95:] += 10.0  # the row's best in the partial last chunk (width 101)
    top_values, top_index = row_top_k(values, k=6, chunk=4)
    expected_values, expected_index = values.topk(6, dim=1)
    assert torch.equal(top_values, expected_values) and torch.equal(top_index, expected_index)


@pytest.mark.parametrize("width,vocab", [(1, 12), (3, 12), (4, 5), (1, 4)])
def test_best_candidates_equal_the_top_of_the_full_log_softmax(width, vocab):
    generator = torch.Generator().manual_seed(width * 100 + vocab)
    images, count = 3, 6
    logits = torch.randn(images * width, vocab, generator=generator) * 3
    beam_scores = -torch.rand(images, width, generator=generator) * 5
    scores, beams, words = best_candidates(logits, beam_scores, count, BOS, PAD)
    log_probs = torch.log_softmax(logits, dim=-1)
    log_probs[:, [BOS, PAD]] = float("-inf")
    every = (beam_scores.view(-1, 1) + log_probs).view(images, width * vocab)
    expected = torch.cat([every, every.new_full((images, count), float("-inf"))], dim=1).topk(count, dim=1).values
    torch.testing.assert_close(scores, expected)
    finite = torch.isfinite(scores)
    chosen = every.gather(1, (beams * vocab + words).clamp(max=width * vocab - 1))
    torch.testing.assert_close(torch.where(finite, chosen, scores), scores)  # each (beam, word) has its score
    assert finite.sum() == min(count, width * (vocab - 2)) * images  # dead candidates only where words run out
    assert not ((words == BOS) | (words == PAD))[finite].any()


@pytest.mark.parametrize("model_name,beam_size,length_penalty", [
    ("small_vocab_model", 2, 0.0), ("small_vocab_model", 3, 0.0), ("small_vocab_model", 3, 1.0),
    ("small_vocab_model", 5, 0.5), ("large_vocab_model", 3, 0.0), ("large_vocab_model", 5, 0.5)])
def test_batched_search_equals_a_plain_one_image_beam_search(request, model_name, beam_size, length_penalty):
    model, max_len = request.getfixturevalue(model_name), 12
    with torch.no_grad():
        features = model.encode(torch.randn(10, 2048, 2, 2, generator=torch.Generator().manual_seed(5)))
        generation = beam_search(model.decoder, features, beam_size, max_len, BOS, EOS, PAD, length_penalty)
        references = [reference_beam_search(model.decoder, features[i:i + 1], beam_size, max_len, length_penalty)
                      for i in range(len(features))]
    lengths, steps = [len(reference[1]) for reference in references], [reference[3] for reference in references]
    assert len(set(lengths)) > 2 and len(set(steps)) > 1  # images end their search at different steps: rows leave
    for image, (score, words, alphas, _) in enumerate(references):
        length = len(words)
        assert generation.tokens[image, :length].tolist() == words
        assert (generation.tokens[image, length:] == PAD).all()
        torch.testing.assert_close(generation.scores[image], torch.tensor(score), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(generation.alphas[image, :length], torch.stack(alphas), rtol=1e-5, atol=1e-6)
        assert (generation.alphas[image, length:] == 0).all()


def test_bfloat16_search_keeps_float32_scores_and_equals_one_image_at_a_time(large_vocab_model):
    """A decoder cast to bfloat16 (``evaluate_checkpoint --dtype bfloat16``): the batched search still equals the
    same search one image at a time, scores and alphas are float32 and are the captions' log-probabilities to
    bfloat16 precision (long captions of this random model may take other words than in float32)."""
    decoder = copy.deepcopy(large_vocab_model.decoder).to(torch.bfloat16)
    with torch.no_grad():
        features = large_vocab_model.encode(torch.randn(10, 2048, 2, 2, generator=torch.Generator().manual_seed(5)))
        exact = beam_search(large_vocab_model.decoder, features, 3, 12, BOS, EOS, PAD)
        features = features.to(torch.bfloat16)
        together = beam_search(decoder, features, 3, 12, BOS, EOS, PAD)
        alone = [beam_search(decoder, features[i:i + 1], 3, 12, BOS, EOS, PAD) for i in range(len(features))]
    assert together.scores.dtype == together.alphas.dtype == torch.float32
    torch.testing.assert_close(together.alphas.sum(dim=2), (together.tokens != PAD).float())  # each word's weights
    for image, generation in enumerate(alone):
        steps = generation.tokens.shape[1]
        assert torch.equal(together.tokens[image, :steps], generation.tokens[0])
        torch.testing.assert_close(together.scores[image], generation.scores[0])
    captions = torch.cat([torch.full((len(features), 1), BOS), together.tokens], dim=1)
    with torch.no_grad():  # the float32 model's log-probability of each bfloat16 caption: the score, to bf16 precision
        logits, _ = large_vocab_model.decoder(features.float(), captions)
    log_probs = torch.log_softmax(logits, dim=-1).gather(2, together.tokens.unsqueeze(2)).squeeze(2)
    float32_scores = torch.where(together.tokens != PAD, log_probs, 0.0).sum(dim=1)
    torch.testing.assert_close(together.scores, float32_scores, rtol=0.02, atol=0.05)
    assert (together.tokens[:, 0] == exact.tokens[:, 0]).all()  # the most confident choice: the float32 one
