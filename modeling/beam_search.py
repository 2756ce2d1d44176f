"""Caption decoding: greedy search and batched beam search (all images and beams in one tensor program)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .decoder import Decoder


class Generation(NamedTuple):
    """tokens (B, L): words without <bos>, then <eos> and pad; scores (B,): log-probability / length**penalty;
    alphas (B, L, R): attention weights of the chosen sequence (zeros after it ends). Scores and alphas are float32
    whatever the decoder's dtype."""

    tokens: torch.Tensor
    scores: torch.Tensor
    alphas: torch.Tensor


def _word_log_probs(logits: torch.Tensor, bos_id: int, pad_id: int) -> torch.Tensor:
    """Log-probabilities of the next word; <bos> and <pad> are never generated (the loss never trains them away)."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    log_probs[:, [bos_id, pad_id]] = float("-inf")
    return log_probs


def project_for_decoding(decoder: Decoder, features: torch.Tensor) -> torch.Tensor:
    """The attention's feature projection in float32 whatever the weights' dtype: a decoder cast to bfloat16 runs its
    matrix products in bfloat16 while the attention energies (so the alphas), log-probabilities and scores stay
    float32."""
    return decoder.attention.project_features(features).float()


def greedy_search(decoder: Decoder, features: torch.Tensor, max_len: int, bos_id: int, eos_id: int, pad_id: int,
                  length_penalty: float = 0.0) -> Generation:
    """Pick the most likely word at each step until every caption has produced <eos> or max_len words."""
    batch, regions = features.shape[:2]
    projected = project_for_decoding(decoder, features)
    state = decoder.init_state(features)
    words = torch.full((batch,), bos_id, dtype=torch.long, device=features.device)
    tokens = torch.full((batch, max_len), pad_id, dtype=torch.long, device=features.device)
    alphas = features.new_zeros(batch, max_len, regions, dtype=torch.float32)
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


def row_top_k(values: torch.Tensor, k: int, chunk: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """``values.topk(k, dim=1)`` of (N, V) values (the same up to the order of ties), faster for k << V: the k best
    of a row lie in the k whole chunks of ``chunk`` columns with the highest maxima or in the columns after the last
    whole chunk, so only those are ranked in full."""
    rows, width = values.shape
    if width <= 4 * k * chunk:
        return values.topk(k, dim=1)
    whole = width // chunk * chunk
    maxima = values[:, :whole].view(rows, -1, chunk).amax(dim=2)
    positions = (maxima.topk(k, dim=1).indices.unsqueeze(2) * chunk
                 + torch.arange(chunk, device=values.device)).view(rows, k * chunk)
    if whole < width:
        positions = torch.cat([positions, torch.arange(whole, width, device=values.device).expand(rows, -1)], dim=1)
    top_values, top_index = values.gather(1, positions).topk(k, dim=1)
    return top_values, positions.gather(1, top_index)


def best_candidates(logits: torch.Tensor, beam_scores: torch.Tensor, count: int, bos_id: int,
                    pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``count`` best continuations per image: scores, parent beams and words, each (images, count), best first.

    A continuation scores its beam's score + log p(word); <bos> and <pad> score -inf. Only each row's top ``count``
    words can be among its image's top ``count``, so beam scores are added to those alone (not to width * vocab
    log-probabilities), then one top-k over width * count candidates per image ranks them. When there are fewer
    than ``count`` (a tiny vocabulary at the first step), dead candidates (score -inf) fill the rest.
    """
    images, width = beam_scores.shape
    per_row = min(count, logits.shape[1])
    row_log_probs, row_words = row_top_k(_word_log_probs(logits, bos_id, pad_id), per_row)
    scores = (row_log_probs + beam_scores.view(-1, 1)).view(images, width * per_row)
    top_scores, top_index = scores.topk(min(count, width * per_row), dim=1)
    top_beams = torch.div(top_index, per_row, rounding_mode="floor")
    top_words = row_words.view(images, width * per_row).gather(1, top_index)
    missing = count - top_scores.shape[1]
    if missing:
        top_scores = F.pad(top_scores, (0, missing), value=float("-inf"))
        top_beams = F.pad(top_beams, (0, missing), value=0)
        top_words = F.pad(top_words, (0, missing), value=pad_id)
    return top_scores, top_beams, top_words


def beam_search(decoder: Decoder, features: torch.Tensor, beam_size: int, max_len: int, bos_id: int, eos_id: int,
                pad_id: int, length_penalty: float = 0.0) -> Generation:
    """Batched beam search; finished captions are ranked by log-probability / length**length_penalty.

    Each step keeps the best beam_size non-<eos> continuations of every image; an <eos> candidate that ranks among
    the top beam_size becomes a finished caption. An image is done once its best finished caption beats anything its
    live beams can still reach (its result can no longer change), and its rows leave the batch, so later steps run
    only the images still searching; if none finishes within max_len, the best unfinished beam is returned.

    The first step runs once per image (all beams start identical); each step stores only the chosen words, their
    parent beams and attention weights (no copy of whole histories), and captions are traced back at the end.
    """
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")
    batch, regions = features.shape[:2]
    device = features.device
    projected = project_for_decoding(decoder, features)
    state = decoder.init_state(features)
    words = torch.full((batch,), bos_id, dtype=torch.long, device=device)
    active = torch.arange(batch, device=device)  # the images still searching; row i*width + k is beam k of active[i]
    beam_scores = torch.zeros(batch, 1, device=device)  # (active images, live beams): one beam before the first step
    best_scores = torch.full((batch,), float("-inf"), device=device)
    best_end = torch.zeros(batch, dtype=torch.long, device=device)  # step of the <eos> of the best finished caption
    best_parent = torch.zeros(batch, dtype=torch.long, device=device)  # its beam before that step
    best_alpha = features.new_zeros(batch, regions, dtype=torch.float32)  # its attention weights at the <eos>
    last_step = torch.full((batch,), max_len - 1, dtype=torch.long, device=device)  # an image's last searched step
    final_scores = torch.zeros(batch, device=device)  # its best live beam's score then
    history_words = torch.full((max_len, batch, beam_size), pad_id, dtype=torch.long, device=device)
    history_parents = torch.zeros(max_len, batch, beam_size, dtype=torch.long, device=device)
    history_alphas = features.new_zeros(max_len, batch, beam_size, regions, dtype=torch.float32)
    candidate_count = 2 * beam_size  # they hold at least beam_size non-<eos> ones (each beam has one <eos>)
    candidate_rank = torch.arange(candidate_count, device=device)
    reachable = float(max_len) ** length_penalty  # live log-probabilities only fall: score / this bounds a live beam
    for t in range(max_len):
        logits, state, alpha = decoder.step(words, state, features, projected)
        images, width = beam_scores.shape
        top_scores, top_beams, top_words = best_candidates(logits, beam_scores, candidate_count, bos_id, pad_id)
        is_eos = top_words == eos_id

        eos_scores = torch.where(is_eos & (candidate_rank < beam_size),
                                 top_scores / float(t + 1) ** length_penalty, float("-inf"))
        new_best, new_best_position = eos_scores.max(dim=1)
        improved = new_best > best_scores[active]
        if bool(improved.any()):
            which = improved.nonzero().squeeze(1)
            image = active[which]
            parent = top_beams[which, new_best_position[which]]
            best_scores[image] = new_best[which]
            best_end[image] = t
            best_parent[image] = parent
            best_alpha[image] = alpha[which * width + parent]

        keep = torch.sort(is_eos.to(torch.uint8), dim=1, stable=True).indices[:, :beam_size]  # best non-<eos> first
        beam_scores = top_scores.gather(1, keep)
        parents = top_beams.gather(1, keep)
        words = top_words.gather(1, keep)
        history_words[t, active] = words
        history_parents[t, active] = parents
        history_alphas[t, active] = alpha.view(images, width, regions).gather(
            1, parents.unsqueeze(2).expand(images, beam_size, regions))

        done = best_scores[active] >= beam_scores[:, 0] / reachable
        if t == max_len - 1 or bool(done.all()):
            last_step[active], final_scores[active] = t, beam_scores[:, 0]
            break
        rows = torch.arange(images, device=device).unsqueeze(1) * width + parents  # (images, beam_size) parent rows
        shrink = bool(done.any())
        if shrink:
            last_step[active[done]], final_scores[active[done]] = t, beam_scores[done, 0]
            searching = (~done).nonzero().squeeze(1)
            active, beam_scores, words, rows = active[searching], beam_scores[searching], words[searching], \
                rows[searching]
        rows, words = rows.view(-1), words.view(-1)
        state = (state[0][rows], state[1][rows])
        if t == 0 or shrink:  # t == 0: from one row per image to beam_size rows per image
            features, projected = features[rows], projected[rows]
    return _trace_back(history_words, history_parents, history_alphas, t + 1, best_scores, best_end, best_parent,
                       best_alpha, last_step, final_scores, eos_id, pad_id, length_penalty)


def _trace_back(history_words: torch.Tensor, history_parents: torch.Tensor, history_alphas: torch.Tensor, steps: int,
                best_scores: torch.Tensor, best_end: torch.Tensor, best_parent: torch.Tensor, best_alpha: torch.Tensor,
                last_step: torch.Tensor, final_scores: torch.Tensor, eos_id: int, pad_id: int,
                length_penalty: float) -> Generation:
    """Each image's caption, read backwards through the stored (step, image, beam) words and parent beams: from the
    parent of its best <eos> if one finished, else from its best live beam (beam 0) at its last step."""
    batch, regions = best_alpha.shape
    device = best_alpha.device
    image = torch.arange(batch, device=device)
    unfinished = torch.isinf(best_scores)
    tokens = torch.full((batch, steps), pad_id, dtype=torch.long, device=device)
    alphas = best_alpha.new_zeros(batch, steps, regions)
    finished = (~unfinished).nonzero().squeeze(1)
    tokens[finished, best_end[finished]] = eos_id
    alphas[finished, best_end[finished]] = best_alpha[finished]
    last_word = torch.where(unfinished, last_step, best_end - 1)
    beam = torch.where(unfinished, 0, best_parent)
    for s in range(steps - 1, -1, -1):
        on = s <= last_word
        tokens[:, s] = torch.where(on, history_words[s, image, beam], tokens[:, s])
        alphas[:, s] = torch.where(on.unsqueeze(1), history_alphas[s, image, beam], alphas[:, s])
        beam = torch.where(on, history_parents[s, image, beam], beam)
    scores = torch.where(unfinished, final_scores / (last_step + 1).float() ** length_penalty, best_scores)
    return Generation(tokens, scores, alphas)
