"""Greedy and beam search in numpy over a decoder step function, a batch of images at once: the search of
``modeling.beam_search`` and the word rules of ``modeling.word_rules`` step for step (same candidates, same <eos> rule,
same early stop, same n-best ranking), for the ONNX captioner, which runs without torch.

``step(words, hidden, cell, features, projected) -> (log_probs, hidden, cell)``: next-word log-probabilities (rows, V)
with <bos> and <pad> at -inf. A search returns image-major ``(tokens, score)`` rows, ``options.n_best`` per image:
tokens end in <eos> when the caption ended; score is log-probability / length**length_penalty.
"""
from __future__ import annotations

import numpy as np


class NumpyWordRules:
    """``modeling.word_rules.WordRules`` on numpy log-probabilities: suppressed ids, <eos> before min_len words,
    words completing an n-gram already in the row (no_repeat_ngram_size) get -inf, in place."""

    def __init__(self, options, eos_id: int):
        self.suppress = list(options.suppress_ids)
        self.min_len, self.ngram, self.eos_id = options.min_len, options.no_repeat_ngram_size, eos_id

    def apply(self, log_probs: np.ndarray, step: int, words_so_far: np.ndarray) -> np.ndarray:
        if self.suppress:
            log_probs[:, self.suppress] = -np.inf
        if step < self.min_len:
            log_probs[:, self.eos_id] = -np.inf
        n = self.ngram
        if n and words_so_far.shape[1] >= n:
            windows = np.lib.stride_tricks.sliding_window_view(words_so_far, n, axis=1)  # (rows, t-n+1, n)
            banned = (windows[:, :, :n - 1] == words_so_far[:, None, words_so_far.shape[1] - n + 1:]).all(axis=2)
            rows = np.broadcast_to(np.arange(len(words_so_far))[:, None], banned.shape)
            log_probs[rows[banned], windows[:, :, n - 1][banned]] = -np.inf
        return log_probs


def greedy_search(step, encoded, options, bos_id: int, eos_id: int, pad_id: int) -> list[tuple[list[int], float]]:
    """The most likely word at each step until every caption has produced <eos> or max_len words."""
    features, projected, hidden, cell = encoded
    batch, rules = len(features), NumpyWordRules(options, eos_id)
    words = np.full(batch, bos_id, dtype=np.int64)
    tokens = np.full((batch, options.max_len), pad_id, dtype=np.int64)
    log_prob, lengths = np.zeros(batch, dtype=np.float32), np.zeros(batch, dtype=np.int64)
    finished = np.zeros(batch, dtype=bool)
    for t in range(options.max_len):
        log_probs, hidden, cell = step(words, hidden, cell, features, projected)
        log_probs = rules.apply(log_probs, t, tokens[:, :t])
        words = log_probs.argmax(axis=1)
        live = ~finished
        log_prob += np.where(live, log_probs[np.arange(batch), words], np.float32(0))
        words = np.where(live, words, pad_id)
        tokens[:, t] = words
        lengths += live
        finished |= words == eos_id
        if finished.all():
            break
    scores = log_prob / lengths.astype(np.float32) ** np.float32(options.length_penalty)
    return [(_until_eos(row, eos_id, pad_id), float(score)) for row, score in zip(tokens.tolist(), scores)]


def beam_search(step, encoded, options, bos_id: int, eos_id: int, pad_id: int) -> list[tuple[list[int], float]]:
    """Batched beam search: each step keeps every image's beam_size best non-<eos> continuations; an <eos> among its
    beam_size best candidates is a finished caption (each image keeps its n_best best); an image stops once its n_best-th
    finished caption beats what its live beams can still reach, and leaves the batch."""
    features, projected, hidden, cell = encoded
    beam_size, n_best, penalty = options.beam_size, options.n_best, options.length_penalty
    rules = NumpyWordRules(options, eos_id)
    active = np.arange(len(features))  # images still searching; row i * width + k is beam k of active[i]
    beam_scores = np.zeros((len(features), 1), dtype=np.float32)
    sequences = np.zeros((len(features), 0), dtype=np.int64)  # words so far of each row
    words = np.full(len(features), bos_id, dtype=np.int64)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in features]  # best first
    live: list[list[tuple[float, list[int]]]] = [[] for _ in features]  # the best n_best beams where a search ended
    reachable = float(options.max_len) ** penalty  # live log-probabilities only fall: score / this bounds a beam
    for t in range(options.max_len):
        log_probs, hidden, cell = step(words, hidden, cell, features, projected)
        log_probs = rules.apply(log_probs, t, sequences)
        images, width = beam_scores.shape
        scores, parents, candidates = _top_candidates(log_probs, beam_scores, 2 * beam_size, pad_id)
        is_eos = candidates == eos_id
        for i, rank in zip(*np.nonzero(is_eos[:, :beam_size] & np.isfinite(scores[:, :beam_size]))):
            caption = [*sequences[i * width + parents[i, rank]].tolist(), eos_id]
            _merge(finished[active[i]], float(scores[i, rank] / np.float32(float(t + 1) ** penalty)), caption, n_best)
        keep = np.argsort(is_eos, axis=1, kind="stable")[:, :beam_size]  # the best non-<eos> candidates
        beam_scores = np.take_along_axis(scores, keep, axis=1)
        parent_rows = (np.arange(images)[:, None] * width + np.take_along_axis(parents, keep, axis=1)).ravel()
        words = np.take_along_axis(candidates, keep, axis=1).ravel()
        sequences = np.concatenate([sequences[parent_rows], words[:, None]], axis=1)
        nth_best = np.array([image[n_best - 1][0] if len(image) == n_best else -np.inf
                             for image in (finished[index] for index in active)])
        done = (nth_best >= beam_scores[:, 0] / np.float32(reachable)) | (t == options.max_len - 1)
        for i in np.nonzero(done)[0]:
            live[active[i]] = [(float(beam_scores[i, k] / np.float32(float(t + 1) ** penalty)),
                                sequences[i * beam_size + k].tolist()) for k in range(n_best)]
        if done.all():
            break
        searching = np.nonzero(~done)[0]
        rows = (searching[:, None] * beam_size + np.arange(beam_size)).ravel()
        source = parent_rows[rows]
        active, beam_scores, words, sequences = active[searching], beam_scores[searching], words[rows], sequences[rows]
        hidden, cell, features, projected = hidden[source], cell[source], features[source], projected[source]
    return [row for image in range(len(finished)) for row in _n_best(finished[image], live[image], n_best)]


def _top_candidates(log_probs: np.ndarray, beam_scores: np.ndarray, count: int,
                    pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``count`` best continuations per image (scores, parent beams, words; each (images, count), best first, a
    tie ranked by beam then word); dead ones (score -inf, <pad>) fill up when there are fewer."""
    images, width = beam_scores.shape
    vocab = log_probs.shape[1]
    totals = (log_probs + beam_scores.reshape(-1, 1)).reshape(images, width * vocab)
    take = min(count, totals.shape[1])
    top = np.sort(np.argpartition(-totals, take - 1, axis=1)[:, :take], axis=1)
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(totals, top, axis=1), axis=1, kind="stable"), axis=1)
    scores, parents, words = np.take_along_axis(totals, top, axis=1), top // vocab, top % vocab
    missing = count - take
    if missing:
        scores = np.pad(scores, ((0, 0), (0, missing)), constant_values=-np.inf)
        parents = np.pad(parents, ((0, 0), (0, missing)))
        words = np.pad(words, ((0, 0), (0, missing)), constant_values=pad_id)
    return scores, parents, words


def _merge(best: list[tuple[float, list[int]]], score: float, caption: list[int], n_best: int) -> None:
    """Add a finished caption to an image's ``n_best`` best (a tie keeps the earlier caption)."""
    best.append((score, caption))
    best.sort(key=lambda entry: -entry[0])
    del best[n_best:]


def _n_best(finished: list[tuple[float, list[int]]], live: list[tuple[float, list[int]]],
            n_best: int) -> list[tuple[list[int], float]]:
    """An image's n_best captions, best first: its finished ones, completed by its best live beams."""
    chosen = (finished + sorted(live, key=lambda entry: -entry[0]))[:n_best]
    return [(caption, score) for score, caption in sorted(chosen, key=lambda entry: -entry[0])]


def _until_eos(tokens: list[int], eos_id: int, pad_id: int) -> list[int]:
    words = [token for token in tokens if token != pad_id]
    return words[:words.index(eos_id) + 1] if eos_id in words else words
