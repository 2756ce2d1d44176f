"""Decoding controls: each does what it promises (no repeated n-gram, min length, suppressed words, n-best ranked and
distinct, top-k/top-p, reproducible sampling), batched == one image at a time with every control on."""
import pytest
import torch
from test_modeling_generate import BOS, EOS, PAD, caption_lengths, sharpened_model, teacher_forced_scores

from modeling import DecodingOptions
from modeling.sampling import restrict_to_top

MAX_LEN = 12
ALL_BEAM_CONTROLS = dict(beam_size=4, max_len=MAX_LEN, length_penalty=0.7, min_len=3, no_repeat_ngram_size=2,
                         suppress_ids=(3,), n_best=3)
ALL_SAMPLING_CONTROLS = dict(sample=True, max_len=MAX_LEN, temperature=0.8, top_k=6, top_p=0.9, seed=5, min_len=2,
                             no_repeat_ngram_size=2, suppress_ids=(3,), n_best=3, length_penalty=0.5)


@pytest.fixture(scope="module")
def model():
    return sharpened_model(vocab_size=12)


@pytest.fixture(scope="module")
def features():
    return torch.randn(8, 2048, 2, 2, generator=torch.Generator().manual_seed(3))


def words_of(tokens):
    return [[word for word in row if word not in (EOS, PAD)] for row in tokens.tolist()]


def has_repeated_bigram(words):
    bigrams = list(zip(words, words[1:]))
    return len(bigrams) != len(set(bigrams))


@pytest.mark.parametrize("mode", [dict(beam_size=1), dict(beam_size=4), dict(sample=True, seed=1)])
def test_no_repeat_ngram_size_leaves_no_repeated_ngram(model, features, mode):
    plain = words_of(model.generate(features, max_len=MAX_LEN, min_len=8, **mode).tokens)
    assert any(has_repeated_bigram(words) for words in plain)  # the rule has something to prevent
    controlled = words_of(model.generate(features, max_len=MAX_LEN, min_len=8, no_repeat_ngram_size=2, **mode).tokens)
    assert not any(has_repeated_bigram(words) for words in controlled)


@pytest.mark.parametrize("mode", [dict(beam_size=1), dict(beam_size=4), dict(sample=True, seed=1)])
def test_min_len_and_suppressed_words(model, features, mode):
    plain = model.generate(features, max_len=MAX_LEN, **mode).tokens
    assert min(caption_lengths(plain)) - 1 < 4  # the control has something to change
    controlled = model.generate(features, max_len=MAX_LEN, min_len=4, **mode).tokens
    assert min(len(words) for words in words_of(controlled)) >= 4
    long_captions = model.generate(features, max_len=MAX_LEN, min_len=8, **mode).tokens
    assert 3 in long_captions
    suppressed = model.generate(features, max_len=MAX_LEN, min_len=8, suppress_ids=(3,), **mode).tokens
    assert 3 not in suppressed and BOS not in suppressed


def test_n_best_is_ranked_distinct_and_scored_like_teacher_forcing(model, features):
    plain = model.generate(features, beam_size=5, max_len=MAX_LEN, length_penalty=0.7)
    n_best = model.generate(features, beam_size=5, max_len=MAX_LEN, length_penalty=0.7, n_best=5)
    assert n_best.tokens.shape[0] == 5 * len(features)
    scores = n_best.scores.view(len(features), 5)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])  # best first
    for image, rows in enumerate(words_of(n_best.tokens)[i:i + 5] for i in range(0, 5 * len(features), 5)):
        assert len({tuple(words) for words in rows}) == 5  # distinct captions
    assert torch.equal(n_best.tokens[::5, :plain.tokens.shape[1]], plain.tokens)  # the first is plain beam search
    expected, _ = teacher_forced_scores(model, features.repeat_interleave(5, dim=0), n_best.tokens, 0.7)
    torch.testing.assert_close(n_best.scores, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("controls", [ALL_BEAM_CONTROLS, ALL_SAMPLING_CONTROLS], ids=["beam", "sampling"])
def test_batched_equals_one_image_at_a_time_with_every_control(model, features, controls):
    options = DecodingOptions(**controls)
    together = model.generate(features, options)
    rows = options.n_best
    for image in range(len(features)):
        alone = model.generate(features[image:image + 1], options.replace(seed=options.seed + image))
        width = alone.tokens.shape[1]
        assert torch.equal(together.tokens[image * rows:(image + 1) * rows, :width], alone.tokens)
        assert set(together.tokens[image * rows:(image + 1) * rows, width:].flatten().tolist()) <= {PAD}
        torch.testing.assert_close(together.scores[image * rows:(image + 1) * rows], alone.scores)


def test_sampling_is_reproducible_with_a_seed(model, features):
    first = model.generate(features, DecodingOptions(**ALL_SAMPLING_CONTROLS))
    again = model.generate(features, DecodingOptions(**ALL_SAMPLING_CONTROLS))
    other = model.generate(features, DecodingOptions(**ALL_SAMPLING_CONTROLS).replace(seed=6))
    assert torch.equal(first.tokens, again.tokens) and torch.equal(first.scores, again.scores)
    assert not torch.equal(first.tokens, other.tokens)
    scores = first.scores.view(len(features), -1)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])


@pytest.mark.parametrize("restriction", [dict(top_k=1), dict(top_p=1e-6)])
def test_sampling_from_only_the_best_word_is_greedy_search(model, features, restriction):
    greedy = model.generate(features, beam_size=1, max_len=MAX_LEN)
    sampled = model.generate(features, sample=True, max_len=MAX_LEN, temperature=2.0, **restriction)
    assert torch.equal(sampled.tokens, greedy.tokens)
    torch.testing.assert_close(sampled.scores, greedy.scores)


def test_top_p_keeps_the_smallest_set_reaching_p():
    log_probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    assert torch.isfinite(restrict_to_top(log_probs, 0, 0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(restrict_to_top(log_probs, 0, 0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(restrict_to_top(log_probs, 3, 1.0)).tolist() == [[True, True, True, False]]


@pytest.mark.parametrize("changes, message", [
    (dict(n_best=4, beam_size=3), "n_best=4 exceeds beam_size=3"), (dict(min_len=30), "min_len must be in"),
    (dict(top_p=0.0, sample=True), "top_p must be in"), (dict(temperature=0.0, sample=True), "temperature must be > 0"),
    (dict(top_k=-1, sample=True), "top_k must be >= 0"), (dict(no_repeat_ngram_size=-2), "no_repeat_ngram_size"),
    (dict(top_k=5), "apply to sampling only")])
def test_out_of_range_controls_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        DecodingOptions(**changes)
