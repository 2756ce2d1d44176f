"""Caption decoding: greedy search and batched beam search (all images and beams in one tensor program)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

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

    The first step runs once per image (all beams start identical); each step stores only the chosen words, their
    parent rows and attention weights (no copy of whole histories), and captions are traced back at the end.
    """
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")
    batch, regions = features.shape[:2]
    device = features.device
    projected = decoder.attention.project_features(features)
    state = decoder.init_state(features)
    words = torch.full((batch,), bos_id, dtype=torch.long, device=device)
    beam_scores = torch.zeros(batch, 1, device=device)  # (images, live beams): one beam before the first step
    best_scores = torch.full((batch,), float("-inf"), device=device)
    best_end = torch.zeros(batch, dtype=torch.long, device=device)  # step of the <eos> of the best finished caption
    best_parent = torch.zeros(batch, dtype=torch.long, device=device)  # its row before that step
    best_alpha = features.new_zeros(batch, regions)  # its attention weights at the <eos>
    image_index = torch.arange(batch, device=device).unsqueeze(1)
    candidate_count = 2 * beam_size  # they hold at least beam_size non-<eos> ones (each beam has one <eos>)
    candidate_rank = torch.arange(candidate_count, device=device)
    step_words, step_parents, step_alphas = [], [], []  # per step, indexed by the rows after that step
    for t in range(max_len):
        logits, state, alpha = decoder.step(words, state, features, projected)
        log_probs = _word_log_probs(logits, bos_id, pad_id)
        width = beam_scores.shape[1]
        vocab = log_probs.shape[-1]
        candidates = (beam_scores.view(-1, 1) + log_probs).view(batch, width * vocab)
        top_scores, top_index = candidates.topk(min(candidate_count, width * vocab), dim=1)
        top_origin = image_index * width + torch.div(top_index, vocab, rounding_mode="floor")  # parent row
        top_words = top_index % vocab
        if top_scores.shape[1] < candidate_count:  # vocabulary < 2*beam_size at the first step: fill with dead beams
            missing = candidate_count - top_scores.shape[1]
            top_scores = F.pad(top_scores, (0, missing), value=float("-inf"))
            top_origin = torch.cat([top_origin, (image_index * width).expand(batch, missing)], dim=1)
            top_words = F.pad(top_words, (0, missing), value=pad_id)
        is_eos = top_words == eos_id

        eos_scores = torch.where(is_eos & (candidate_rank < beam_size),
                                 top_scores / float(t + 1) ** length_penalty, float("-inf"))
        new_best, new_best_position = eos_scores.max(dim=1)
        improved = new_best > best_scores
        if bool(improved.any()):
            parent = top_origin.gather(1, new_best_position.unsqueeze(1)).squeeze(1)
            best_scores = torch.where(improved, new_best, best_scores)
            best_end = torch.where(improved, t, best_end)
            best_parent = torch.where(improved, parent, best_parent)
            best_alpha = torch.where(improved.unsqueeze(1), alpha[parent], best_alpha)

        keep = torch.sort(is_eos.to(torch.uint8), dim=1, stable=True).indices[:, :beam_size]  # best non-<eos> first
        beam_scores = top_scores.gather(1, keep)
        parents = top_origin.gather(1, keep).view(-1)
        words = top_words.gather(1, keep).view(-1)
        state = (state[0][parents], state[1][parents])
        if t == 0:  # from one row per image to beam_size rows per image (row i*beam_size + k is beam k of image i)
            features, projected = features[parents], projected[parents]
        step_words.append(words)
        step_parents.append(parents)
        step_alphas.append(alpha[parents])

        # live log-probabilities only fall, so the best a live beam can reach is its score / max_len**penalty
        if bool((best_scores >= beam_scores[:, 0] / float(max_len) ** length_penalty).all()):
            break
    steps = t + 1
    unfinished = torch.isinf(best_scores)
    tokens = torch.full((batch, steps), pad_id, dtype=torch.long, device=device)
    alphas = features.new_zeros(batch, steps, regions)
    finished = (~unfinished).nonzero().squeeze(1)
    tokens[finished, best_end[finished]] = eos_id
    alphas[finished, best_end[finished]] = best_alpha[finished]
    # trace back from beam 0 after the last step (unfinished) or from the parent of the best <eos> (finished)
    last_step = torch.where(unfinished, steps - 1, best_end - 1)
    row = torch.where(unfinished, image_index.squeeze(1) * beam_size, best_parent)
    for s in range(steps - 1, -1, -1):
        on = s <= last_step
        tokens[:, s] = torch.where(on, step_words[s][row], tokens[:, s])
        alphas[:, s] = torch.where(on.unsqueeze(1), step_alphas[s][row], alphas[:, s])
        row = torch.where(on, step_parents[s][row], row)
    scores = torch.where(unfinished, beam_scores[:, 0] / float(steps) ** length_penalty, best_scores)
    return Generation(tokens, scores, alphas)
