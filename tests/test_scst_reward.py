"""SCST reward: per-caption CIDEr-D on token ids equals pycocoevalcap 1.2 / trainer.evaluation.metrics (document frequencies of
the evaluated set) and a plain reference implementation (training-split document frequencies)."""
import math
import random
from collections import Counter

import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider

from data_pipelines.vocab import SPECIALS
from trainer.evaluation.metrics import cider_d, ptb_tokenize, tokenize_caption
from trainer.scst.document_frequency import CiderDocumentFrequencies
from trainer.scst.reward import CiderDReward

PAD, BOS, EOS, UNK = 0, 1, 2, 3
POOL = ["a", "man", "woman", "dog", "cat", "riding", "sitting", "on", "the", "of", "with", "red", "blue", "bus",
        "street", "grass", "field", "'s", "n't", "t-shirt"]
VOCAB = [*SPECIALS, *POOL, "zebra"]  # "zebra" never occurs in a reference


def random_references(rng, num_images):
    """Raw references with capitals, punctuation and symbols the metric tokenizer keeps ("&", brackets)."""
    def caption():
        words = rng.choices(POOL[:17], k=rng.randint(2, 11))
        if rng.random() < 0.3:
            words.insert(rng.randint(0, len(words)), rng.choice(["&", "(big)", "man's", "isn't"]))
        return words[0].capitalize() + " " + " ".join(words[1:]) + rng.choice([".", "!", "", " ."])
    return [[caption() for _ in range(rng.randint(1, 6))] for _ in range(num_images)]


def random_tokens(rng, images, samples, max_len, word_ids):
    """(B, S, L) captions: words, then <eos> and pad; some empty (<eos> first), some never ending."""
    tokens = np.full((images, samples, max_len), PAD, dtype=np.int64)
    for b in range(images):
        for s in range(samples):
            length = rng.choice([0, max_len, *range(1, max_len)])
            tokens[b, s, :length] = rng.choices(word_ids, k=length)
            if length < max_len:
                tokens[b, s, length] = EOS
    return tokens


def reward_on_random_references(rng, prefix, num_images):
    """Image ids PREFIX0.., their random references and the reward with those references' document frequencies."""
    image_ids = [f"{prefix}{index}" for index in range(num_images)]
    references = random_references(rng, num_images)
    table = CiderDocumentFrequencies.from_references(image_ids, references)
    return image_ids, references, CiderDReward(table, VOCAB, eos_id=EOS)


def caption_words(row):
    row = list(row)
    return [VOCAB[t] for t in row[: row.index(EOS) if EOS in row else len(row)]]


def test_rewards_equal_pycocoevalcap_and_metrics_with_the_evaluated_sets_frequencies():
    rng = random.Random(0)
    image_ids, references, reward = reward_on_random_references(rng, "im", 25)
    tokens = random_tokens(rng, len(image_ids), 4, 14, list(range(4, 4 + 16)))  # ordinary words only
    rewards = reward(image_ids, tokens)
    assert rewards.shape == (25, 4) and rewards.max() > 1.0
    gts = {image_id: [tokenize_caption(ref) for ref in refs] for image_id, refs in zip(image_ids, references)}
    for sample in range(4):  # each set of one caption per image is an evaluated set with these references
        captions = [" ".join(caption_words(tokens[b, sample])) for b in range(len(image_ids))]
        assert all(ptb_tokenize(caption) == caption.split() for caption in captions)  # both tokenizations agree
        _, coco = Cider().compute_score(gts, {image_id: [c] for image_id, c in zip(image_ids, captions)})
        _, ours = cider_d(captions, [gts[image_id] for image_id in image_ids])
        np.testing.assert_allclose(rewards[:, sample], coco, rtol=0, atol=1e-9)
        np.testing.assert_allclose(rewards[:, sample], ours, rtol=0, atol=1e-9)


def reference_cider_d(candidate, references, document_frequency, num_images, sigma=6.0):
    """coco-caption's CIDEr-D of one word list, written plainly from the paper/coco-caption definition."""
    def vector(words):
        grams = Counter(tuple(words[i:i + n]) for n in range(1, 5) for i in range(len(words) - n + 1))
        vec = [{} for _ in range(4)]
        for gram, count in grams.items():
            vec[len(gram) - 1][gram] = count * (math.log(num_images) - math.log(max(1.0, document_frequency[gram])))
        norms = [math.sqrt(sum(value ** 2 for value in order.values())) for order in vec]
        return vec, norms, max(len(words) - 1, 0)

    cand_vec, cand_norm, cand_len = vector(candidate)
    total = 0.0
    for reference in references:
        ref_vec, ref_norm, ref_len = vector(reference)
        per_order = []
        for n in range(4):
            dot = sum(min(value, ref_vec[n].get(gram, 0.0)) * ref_vec[n].get(gram, 0.0)
                      for gram, value in cand_vec[n].items())
            if cand_norm[n] and ref_norm[n]:
                dot /= cand_norm[n] * ref_norm[n]
            per_order.append(dot * math.exp(-((cand_len - ref_len) ** 2) / (2 * sigma ** 2)))
        total += sum(per_order) / 4
    return total / len(references) * 10.0


def test_rewards_with_training_frequencies_equal_a_reference_implementation():
    rng = random.Random(1)
    train_ids, train_refs, reward = reward_on_random_references(rng, "train", 60)
    tokenized = {image_id: [ptb_tokenize(ref) for ref in refs] for image_id, refs in zip(train_ids, train_refs)}
    document_frequency = Counter(gram for refs in tokenized.values() for gram in
                                 {tuple(r[i:i + n]) for r in refs for n in range(1, 5) for i in range(len(r) - n + 1)})
    batch_ids = rng.sample(train_ids, 11) + [train_ids[3]]  # any order; an image may come twice
    tokens = random_tokens(rng, len(batch_ids), 5, 12, list(range(3, len(VOCAB))))  # incl. <unk> and "zebra"
    rewards = reward(batch_ids, tokens)
    for b, image_id in enumerate(batch_ids):
        for s in range(5):
            words = [f"<unmatched {w}>" if w in ("<unk>", "zebra") else w for w in caption_words(tokens[b, s])]
            expected = reference_cider_d(words, tokenized[image_id], document_frequency, len(train_ids))
            assert rewards[b, s] == pytest.approx(expected, abs=1e-9, rel=0), (image_id, words)
    assert (rewards[-1] > 0).any() and np.isin(tokens, [UNK, len(VOCAB) - 1]).any()


def test_a_caption_equal_to_a_reference_beats_unrelated_ones_and_empty_scores_zero():
    table = CiderDocumentFrequencies.from_references(
        ["a", "b", "c"], [["A red bus on the street."], ["A dog on the grass."], ["The cat sitting."]])
    reward = CiderDReward(table, VOCAB, eos_id=EOS)
    ids = {word: index for index, word in enumerate(VOCAB)}
    exact = [ids[w] for w in "a red bus on the street".split()] + [EOS]
    other = [ids[w] for w in "the cat sitting".split()] + [EOS, PAD, PAD, PAD]
    empty = [EOS] + [PAD] * 6
    rewards = reward(["a"], np.array([[exact, other, empty]]))
    assert rewards[0, 0] > rewards[0, 1] >= 0 and rewards[0, 2] == 0


def test_unknown_image_and_bad_shape_are_clear_errors():
    table = CiderDocumentFrequencies.from_references(["a", "b"], [["a dog"], ["a cat"]])
    reward = CiderDReward(table, VOCAB, eos_id=EOS)
    with pytest.raises(KeyError, match="'nope'"):
        reward(["a", "nope"], np.zeros((2, 1, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(B, S, L\)"):
        reward(["a"], np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="non-empty list"):
        CiderDocumentFrequencies.from_references(["a"], [[]])

