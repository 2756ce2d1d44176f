"""Caption decoding: greedy search and batched beam search (all images and beams in one tensor program)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .decoder import Decoder
from .word_rules import WordRules


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
                  length_penalty: float = 0.0, rules: WordRules | None = None) -> Generation:
    """Pick the most likely word at each step until every caption has produced <eos> or max_len words; ``rules``
    forbid words (min_len, repeated n-grams, suppressed ids)."""
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
        log_probs = rules.log_probs(logits, t, tokens[:, :t]) if rules else _word_log_probs(logits, bos_id, pad_id)
        best_log_prob, words = log_probs.max(dim=-1)
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
    return top_continuations(_word_log_probs(logits, bos_id, pad_id), beam_scores, count, pad_id)


def top_continuations(log_probs: torch.Tensor, beam_scores: torch.Tensor, count: int,
                      pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``best_candidates`` from next-word log-probabilities (rows, V) in which forbidden words are -inf."""
    images, width = beam_scores.shape
    per_row = min(count, log_probs.shape[1])
    row_log_probs, row_words = row_top_k(log_probs, per_row)
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
                pad_id: int, length_penalty: float = 0.0, rules: WordRules | None = None,
                n_best: int = 1) -> Generation:
    """Batched beam search; finished captions are ranked by log-probability / length**length_penalty.

    Each step keeps the best beam_size non-<eos> continuations of every image; an <eos> candidate that ranks among
    the top beam_size becomes a finished caption, and each image keeps its ``n_best`` best finished ones. An image
    is done once its n_best-th finished caption beats anything its live beams can still reach (its result can no
    longer change), and its rows leave the batch, so later steps run only the images still searching; an image with
    fewer than n_best finished captions within max_len is completed by its best live beams. ``rules`` forbid words.
    With n_best > 1 the rows are image-major (row ``i * n_best + k`` is the k-th best caption of image i).

    The first step runs once per image (all beams start identical); each step stores only the chosen words, their
    parent beams and attention weights (no copy of whole histories), and captions are traced back at the end.
    """
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be in [1, beam_size={beam_size}], got {n_best}")
    batch, regions = features.shape[:2]
    device = features.device
    projected = project_for_decoding(decoder, features)
    state = decoder.init_state(features)
    words = torch.full((batch,), bos_id, dtype=torch.long, device=device)
    active = torch.arange(batch, device=device)  # the images still searching; row i*width + k is beam k of active[i]
    beam_scores = torch.zeros(batch, 1, device=device)  # (active images, live beams): one beam before the first step
    finished = _Finished(batch, n_best, regions, device)
    last_step = torch.full((batch,), max_len - 1, dtype=torch.long, device=device)  # an image's last searched step
    final_scores = torch.zeros(batch, beam_size, device=device)  # its live beams' scores then
    history_words = torch.full((max_len, batch, beam_size), pad_id, dtype=torch.long, device=device)
    history_parents = torch.zeros(max_len, batch, beam_size, dtype=torch.long, device=device)
    history_alphas = features.new_zeros(max_len, batch, beam_size, regions, dtype=torch.float32)
    sequences = torch.zeros(batch, 0, dtype=torch.long, device=device) if rules and rules.ngram else None
    candidate_count = 2 * beam_size  # they hold at least beam_size non-<eos> ones (each beam has one <eos>)
    candidate_rank = torch.arange(candidate_count, device=device)
    reachable = float(max_len) ** length_penalty  # live log-probabilities only fall: score / this bounds a live beam
    for t in range(max_len):
        logits, state, alpha = decoder.step(words, state, features, projected)
        images, width = beam_scores.shape
        log_probs = rules.log_probs(logits, t, sequences) if rules else _word_log_probs(logits, bos_id, pad_id)
        top_scores, top_beams, top_words = top_continuations(log_probs, beam_scores, candidate_count, pad_id)
        is_eos = top_words == eos_id

        eos_scores = torch.where(is_eos & (candidate_rank < beam_size),
                                 top_scores / float(t + 1) ** length_penalty, float("-inf"))
        finished.add(active, eos_scores, top_beams, alpha, width, t)

        keep = torch.sort(is_eos.to(torch.uint8), dim=1, stable=True).indices[:, :beam_size]  # best non-<eos> first
        beam_scores = top_scores.gather(1, keep)
        parents = top_beams.gather(1, keep)
        words = top_words.gather(1, keep)
        history_words[t, active] = words
        history_parents[t, active] = parents
        history_alphas[t, active] = alpha.view(images, width, regions).gather(
            1, parents.unsqueeze(2).expand(images, beam_size, regions))

        done = finished.scores[active, -1] >= beam_scores[:, 0] / reachable
        if t == max_len - 1 or bool(done.all()):
            last_step[active], final_scores[active] = t, beam_scores
            break
        rows = torch.arange(images, device=device).unsqueeze(1) * width + parents  # (images, beam_size) parent rows
        shrink = bool(done.any())
        if shrink:
            last_step[active[done]], final_scores[active[done]] = t, beam_scores[done]
            searching = (~done).nonzero().squeeze(1)
            active, beam_scores, words, rows = active[searching], beam_scores[searching], words[searching], \
                rows[searching]
        rows, words = rows.view(-1), words.view(-1)
        state = (state[0][rows], state[1][rows])
        if sequences is not None:
            sequences = torch.cat([sequences[rows], words.unsqueeze(1)], dim=1)
        if t == 0 or shrink:  # t == 0: from one row per image to beam_size rows per image
            features, projected = features[rows], projected[rows]
    history = (history_words, history_parents, history_alphas)
    return _n_best(history, t + 1, finished, last_step, final_scores, eos_id, pad_id, length_penalty)


class _Finished:
    """Each image's ``n_best`` best finished captions, best first: score, step of the <eos>, beam before that step
    and attention weights at the <eos> (score -inf: none yet)."""

    def __init__(self, batch: int, n_best: int, regions: int, device: torch.device):
        self.scores = torch.full((batch, n_best), float("-inf"), device=device)
        self.end = torch.zeros(batch, n_best, dtype=torch.long, device=device)
        self.parent = torch.zeros(batch, n_best, dtype=torch.long, device=device)
        self.alpha = torch.zeros(batch, n_best, regions, device=device)

    def add(self, active: torch.Tensor, eos_scores: torch.Tensor, top_beams: torch.Tensor, alpha: torch.Tensor,
            width: int, t: int) -> None:
        """Merge this step's <eos> candidates (active images, candidates): a tie keeps the earlier caption."""
        improved = eos_scores.max(dim=1).values > self.scores[active, -1]
        if not bool(improved.any()):
            return
        which = improved.nonzero().squeeze(1)
        image, n_best = active[which], self.scores.shape[1]
        merged = torch.cat([self.scores[image], eos_scores[which]], dim=1)
        order = torch.sort(merged, dim=1, descending=True, stable=True).indices[:, :n_best]
        old, new = order < n_best, (order - n_best).clamp(min=0)
        kept = order.clamp(max=n_best - 1)
        parent = torch.where(old, self.parent[image].gather(1, kept), top_beams[which].gather(1, new))
        new_alpha = alpha[(which.unsqueeze(1) * width + parent)]
        self.alpha[image] = torch.where(old.unsqueeze(2), self.alpha[image].gather(
            1, kept.unsqueeze(2).expand_as(new_alpha)), new_alpha)
        self.end[image] = torch.where(old, self.end[image].gather(1, kept), t)
        self.parent[image] = parent
        self.scores[image] = merged.gather(1, order)


def _n_best(history: tuple[torch.Tensor, torch.Tensor, torch.Tensor], steps: int, finished: _Finished,
            last_step: torch.Tensor, final_scores: torch.Tensor, eos_id: int, pad_id: int,
            length_penalty: float) -> Generation:
    """Each image's n_best captions: its finished ones first, then its best live beams at its last step (beams are
    sorted, so the first n_best suffice), the chosen ones ranked by score; (B, L) rows when n_best is 1, else
    image-major (B * n_best, L)."""
    batch, n_best = finished.scores.shape
    device = final_scores.device
    live_scores = final_scores[:, :n_best] / (last_step + 1).float().unsqueeze(1) ** length_penalty
    is_finished = torch.cat([~torch.isinf(finished.scores), torch.zeros_like(live_scores, dtype=torch.bool)], 1)
    scores = torch.cat([finished.scores, live_scores], 1)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    order = order.gather(1, torch.sort(is_finished.gather(1, order).to(torch.uint8), dim=1, descending=True,
                                       stable=True).indices)[:, :n_best]
    order = order.gather(1, torch.sort(scores.gather(1, order), dim=1, descending=True, stable=True).indices)
    live_beams = torch.arange(n_best, device=device).expand(batch, -1)
    tokens, alphas = _trace_back(history, steps, torch.arange(batch, device=device).repeat_interleave(2 * n_best),
                                 torch.cat([finished.parent, live_beams], 1).view(-1),
                                 torch.cat([finished.end - 1, last_step.unsqueeze(1).expand(-1, n_best)], 1).view(-1),
                                 torch.cat([finished.end, torch.full_like(live_beams, -1)], 1).view(-1),
                                 torch.cat([finished.alpha, torch.zeros_like(finished.alpha)], 1),
                                 is_finished.view(-1), eos_id, pad_id)
    chosen = (torch.arange(batch, device=device).unsqueeze(1) * (2 * n_best) + order).view(-1)
    return Generation(tokens[chosen], scores.gather(1, order).view(-1), alphas[chosen])


def _trace_back(history: tuple[torch.Tensor, torch.Tensor, torch.Tensor], steps: int, image: torch.Tensor,
                beam: torch.Tensor, last_word: torch.Tensor, eos_step: torch.Tensor, eos_alpha: torch.Tensor,
                ends: torch.Tensor, eos_id: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens and alphas of captions read backwards through the stored (step, image, beam) words and parent beams,
    from ``beam`` at step ``last_word``; an ending one (``ends``) has its <eos> at ``eos_step``."""
    history_words, history_parents, history_alphas = history
    rows, regions = image.shape[0], history_alphas.shape[3]
    tokens = torch.full((rows, steps), pad_id, dtype=torch.long, device=image.device)
    alphas = history_alphas.new_zeros(rows, steps, regions)
    ending = ends.nonzero().squeeze(1)
    tokens[ending, eos_step[ending]] = eos_id
    alphas[ending, eos_step[ending]] = eos_alpha.reshape(rows, regions)[ending]
    for s in range(steps - 1, -1, -1):
        on = s <= last_word
        tokens[:, s] = torch.where(on, history_words[s, image, beam], tokens[:, s])
        alphas[:, s] = torch.where(on.unsqueeze(1), history_alphas[s, image, beam], alphas[:, s])
        beam = torch.where(on, history_parents[s, image, beam], beam)
    return tokens, alphas
