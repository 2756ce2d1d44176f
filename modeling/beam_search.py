"""Caption decoding: greedy search and batched beam search (all images and beams in one tensor program)."""
from __future__ import annotations

from typing import NamedTuple

import torch

from .decoder import Decoder


class Generation(NamedTuple):
    """tokens (B, L): words without <bos>, then <eos> and pad; scores (B,): log-probability / length**penalty;
    alphas (B, L, R): attention weights of the chosen sequence (zeros after it ends)."""

    tokens: torch.Tensor
    scores: torch.Tensor
    alphas: torch.Tensor


def _word_log_probs(logits: torch.Tensor, bos_id: int, pad_id: int) -> torch.Tensor:
    """Log-probabilities of the next word; <bos> and <pad> are never generated (the loss never trains them away)."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    log_probs[:, [bos_id, pad_id]] = float("-inf")
    return log_probs


def greedy_search(decoder: Decoder, features: torch.Tensor, max_len: int, bos_id: int, eos_id: int, pad_id: int,
                  length_penalty: float = 0.0) -> Generation:
    """Pick the most likely word at each step until every caption has produced <eos> or max_len words."""
    batch, regions = features.shape[:2]
    projected = decoder.attention.project_features(features)
    state = decoder.init_state(features)
    words = torch.full((batch,), bos_id, dtype=torch.long, device=features.device)
    tokens = torch.full((batch, max_len), pad_id, dtype=torch.long, device=features.device)
    alphas = features.new_zeros(batch, max_len, regions)
    log_prob = features.new_zeros(batch, dtype=torch.float32)
    lengths = torch.zeros(batch, dtype=torch.long, device=features.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=features.device)
    for t in range(max_len):
        logits, state, alpha = decoder.step(words, state, features, projected)
        best_log_prob, words = _word_log_probs(logits, bos_id, pad_id).max(dim=-1)
        live = ~finished
        words = torch.where(live, words, pad_id)
        tokens[:, t] = words
        alphas[:, t] = torch.where(live.unsqueeze(1), alpha, 0.0)
        log_prob += torch.where(live, best_log_prob, 0.0)
        lengths += live.long()
        finished |= words == eos_id
        if bool(finished.all()):
            break
    steps = t + 1
    return Generation(tokens[:, :steps], log_prob / lengths.float() ** length_penalty, alphas[:, :steps])


def beam_search(decoder: Decoder, features: torch.Tensor, beam_size: int, max_len: int, bos_id: int, eos_id: int,
                pad_id: int, length_penalty: float = 0.0) -> Generation:
    """Batched beam search; finished captions are ranked by log-probability / length**length_penalty.

    Each step keeps the best beam_size non-<eos> continuations of every image; an <eos> candidate that ranks among
    the top beam_size becomes a finished caption. An image is done once its best finished caption beats anything its
    live beams can still reach; if none finishes within max_len, the best unfinished beam is returned.
    """
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")
    batch, regions = features.shape[:2]
    device = features.device
    features = features.repeat_interleave(beam_size, dim=0)  # row i*beam_size + k is beam k of image i
    projected = decoder.attention.project_features(features)
    state = decoder.init_state(features)
    rows = batch * beam_size
    words = torch.full((rows,), bos_id, dtype=torch.long, device=device)
    history = torch.full((rows, max_len), pad_id, dtype=torch.long, device=device)
    history_alphas = features.new_zeros(rows, max_len, regions)
    # all beams start identical: only beam 0 may expand at the first step
    beam_scores = torch.full((batch, beam_size), float("-inf"), device=device)
    beam_scores[:, 0] = 0.0
    best_scores = torch.full((batch,), float("-inf"), device=device)
    best_tokens = history[::beam_size].clone()
    best_alphas = history_alphas[::beam_size].clone()
    image_offsets = torch.arange(batch, device=device).unsqueeze(1) * beam_size
    candidate_rank = torch.arange(2 * beam_size, device=device)
    for t in range(max_len):
        logits, state, alpha = decoder.step(words, state, features, projected)
        log_probs = _word_log_probs(logits, bos_id, pad_id)
        vocab = log_probs.shape[-1]
        candidates = (beam_scores.view(rows, 1) + log_probs).view(batch, beam_size * vocab)
        # 2*beam_size candidates hold at least beam_size non-<eos> ones (each beam has one <eos> candidate)
        top_scores, top_index = candidates.topk(min(2 * beam_size, beam_size * vocab), dim=1)
        top_origin = image_offsets + torch.div(top_index, vocab, rounding_mode="floor")  # flat row of the parent
        top_words = top_index % vocab
        is_eos = top_words == eos_id

        eos_scores = torch.where(is_eos & (candidate_rank[: top_words.shape[1]] < beam_size),
                                 top_scores / float(t + 1) ** length_penalty, float("-inf"))
        new_best, new_best_position = eos_scores.max(dim=1)
        improved = new_best > best_scores
        if bool(improved.any()):
            parent = top_origin.gather(1, new_best_position.unsqueeze(1)).squeeze(1)
            finished_tokens = history[parent]
            finished_tokens[:, t] = eos_id
            finished_alphas = history_alphas[parent]
            finished_alphas[:, t] = alpha[parent]
            best_tokens = torch.where(improved.unsqueeze(1), finished_tokens, best_tokens)
            best_alphas = torch.where(improved.view(batch, 1, 1), finished_alphas, best_alphas)
            best_scores = torch.where(improved, new_best, best_scores)

        keep = torch.sort(is_eos.to(torch.uint8), dim=1, stable=True).indices[:, :beam_size]  # best non-<eos> first
        beam_scores = top_scores.gather(1, keep)
        parents = top_origin.gather(1, keep).view(-1)
        words = top_words.gather(1, keep).view(-1)
        state = (state[0][parents], state[1][parents])
        history = history[parents]
        history[:, t] = words
        history_alphas = history_alphas[parents]
        history_alphas[:, t] = alpha[parents]

        # live log-probabilities only fall, so the best a live beam can reach is its score / max_len**penalty
        if bool((best_scores >= beam_scores[:, 0] / float(max_len) ** length_penalty).all()):
            break
    steps = t + 1
    unfinished = torch.isinf(best_scores)
    tokens = torch.where(unfinished.unsqueeze(1), history[::beam_size], best_tokens)
    alphas = torch.where(unfinished.view(batch, 1, 1), history_alphas[::beam_size], best_alphas)
    scores = torch.where(unfinished, beam_scores[:, 0] / float(steps) ** length_penalty, best_scores)
    return Generation(tokens[:, :steps], scores, alphas[:, :steps])
