"""Caption sampling for self-critical training: several captions per image drawn from the model, with gradients.

Uses only the decoder's public step API (``attention.project_features``, ``init_state``, ``step``). Log-probabilities
and entropies are those of the distribution actually sampled from (logits / temperature, <bos> and <pad> excluded),
so ``-advantage * sum(log_probs)`` is the REINFORCE gradient of the sampling policy.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .beam_search import Generation


class SampledCaptions(NamedTuple):
    """Rows are image-major (row ``i * num_samples + k`` is sample k of image i).

    tokens (N, L): sampled words, then <eos>, then pad; log_probs (N, L): log-probability of each sampled word, 0 after
    <eos>; entropy (N, L): entropy of each step's distribution, 0 after <eos>; alphas (N, L, R): attention weights,
    0 after <eos>; mask (N, L): true up to and including <eos> (every step of a caption that never ends).
    """

    tokens: torch.Tensor
    log_probs: torch.Tensor
    entropy: torch.Tensor
    alphas: torch.Tensor
    mask: torch.Tensor


def sample_captions(decoder, features: torch.Tensor, max_len: int, bos_id: int, eos_id: int, pad_id: int,
                    num_samples: int = 1, temperature: float = 1.0, greedy: bool = False,
                    generator: torch.Generator | None = None) -> SampledCaptions:
    """Draw ``num_samples`` captions per image of ``features`` (B, R, D) (multinomial; ``greedy`` takes the argmax)
    until every caption has produced <eos> or ``max_len`` words."""
    if max_len < 1 or num_samples < 1 or not temperature > 0:
        raise ValueError(f"need max_len >= 1, num_samples >= 1 and temperature > 0, got max_len={max_len}, "
                         f"num_samples={num_samples}, temperature={temperature}")
    features = features.repeat_interleave(num_samples, dim=0)
    rows, device = features.shape[0], features.device
    projected = decoder.attention.project_features(features)
    state = decoder.init_state(features)
    words = torch.full((rows,), bos_id, dtype=torch.long, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    never = torch.tensor([bos_id, pad_id], device=device)  # never generated: the distribution excludes them
    tokens, log_probs, entropies, alphas, masks = [], [], [], [], []
    for _ in range(max_len):
        logits, state, alpha = decoder.step(words, state, features, projected)
        logits = logits.float().index_fill(1, never, float("-inf"))
        step_log_probs = torch.log_softmax(logits / temperature, dim=-1)
        probs = step_log_probs.exp()
        if greedy:
            words = step_log_probs.argmax(dim=-1)
        else:
            words = torch.multinomial(probs.detach(), 1, generator=generator).squeeze(1)
        live = ~finished
        words = torch.where(live, words, pad_id)
        word_log_prob = step_log_probs.gather(1, words.unsqueeze(1)).squeeze(1)
        entropy = -(probs * step_log_probs.masked_fill(probs == 0, 0.0)).sum(dim=1)
        tokens.append(words)
        log_probs.append(torch.where(live, word_log_prob, 0.0))
        entropies.append(torch.where(live, entropy, 0.0))
        alphas.append(alpha * live.unsqueeze(1))
        masks.append(live)
        finished = finished | (words == eos_id)
        if bool(finished.all()):
            break
    return SampledCaptions(torch.stack(tokens, dim=1), torch.stack(log_probs, dim=1), torch.stack(entropies, dim=1),
                           torch.stack(alphas, dim=1), torch.stack(masks, dim=1))


class CaptionSampler(nn.Module):
    """A Captioner whose ``forward`` encodes images (or backbone features) and samples captions with gradients.

    Self-critical training wraps the model in this before DDP: DDP synchronises gradients only for graphs built by
    the forward of the module it wraps. Parameters are the Captioner's own (same names under ``captioner.``).
    """

    def __init__(self, captioner: nn.Module):
        super().__init__()
        self.captioner = captioner

    def forward(self, x: torch.Tensor, num_samples: int, max_len: int, temperature: float = 1.0) -> SampledCaptions:
        config = self.captioner.config
        return sample_captions(self.captioner.decoder, self.captioner.encode(x), max_len, config.bos_id,
                               config.eos_id, config.pad_id, num_samples, temperature)


def restrict_to_top(log_probs: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """``log_probs`` (rows, V) with words outside the ``top_k`` most likely (0: no limit) and outside the smallest set
    holding ``top_p`` of the probability (nucleus; 1: no limit) set to -inf; the most likely word always stays."""
    if top_k and top_k < log_probs.shape[1]:
        threshold = log_probs.topk(top_k, dim=1).values[:, -1:]
        log_probs = log_probs.masked_fill(log_probs < threshold, float("-inf"))
    if top_p < 1.0:
        sorted_log_probs, order = log_probs.sort(dim=1, descending=True)
        probs = torch.softmax(sorted_log_probs, dim=1)
        outside = probs.cumsum(dim=1) - probs >= top_p  # the mass before this word already reaches top_p
        log_probs = log_probs.masked_fill(outside.scatter(1, order, outside), float("-inf"))
    return log_probs


@torch.no_grad()
def sample_search(decoder, features: torch.Tensor, options, rules, seeds: list[int], bos_id: int, eos_id: int,
                  pad_id: int) -> Generation:
    """``options.n_best`` sampled captions per image of ``features`` (B, R, D), image i drawing from its own
    generator seeded ``seeds[i]`` (so batching does not change them), ranked by score: the model's
    log-probability (temperature 1, ``rules`` applied) / length**length_penalty. Rows are image-major when
    n_best > 1; sampling uses softmax(log p / temperature) restricted by ``restrict_to_top`` (Gumbel-max draws)."""
    samples, device = options.n_best, features.device
    if len(seeds) != features.shape[0]:
        raise ValueError(f"need one seed per image: {len(seeds)} seeds for {features.shape[0]} images")
    generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
    features = features.repeat_interleave(samples, dim=0)
    rows, regions = features.shape[:2]
    projected = decoder.attention.project_features(features).float()
    state = decoder.init_state(features)
    words = torch.full((rows,), bos_id, dtype=torch.long, device=device)
    tokens = torch.full((rows, options.max_len), pad_id, dtype=torch.long, device=device)
    alphas = features.new_zeros(rows, options.max_len, regions, dtype=torch.float32)
    log_prob = features.new_zeros(rows, dtype=torch.float32)
    lengths = torch.zeros(rows, dtype=torch.long, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    for t in range(options.max_len):
        logits, state, alpha = decoder.step(words, state, features, projected)
        log_probs = rules.log_probs(logits, t, tokens[:, :t])
        allowed = restrict_to_top(torch.log_softmax(log_probs / options.temperature, dim=1), options.top_k,
                                  options.top_p)
        uniforms = torch.cat([torch.rand(samples, allowed.shape[1], generator=generator, device=device)
                              for generator in generators])
        words = (allowed - torch.log(-torch.log(uniforms))).argmax(dim=1)  # Gumbel-max: a draw from softmax(allowed)
        live = ~finished
        words = torch.where(live, words, pad_id)
        tokens[:, t] = words
        alphas[:, t] = torch.where(live.unsqueeze(1), alpha, 0.0)
        log_prob += torch.where(live, log_probs.gather(1, words.unsqueeze(1)).squeeze(1), 0.0)
        lengths += live.long()
        finished |= words == eos_id
        if bool(finished.all()):
            break
    steps = t + 1
    scores = (log_prob / lengths.float() ** options.length_penalty).view(-1, samples)
    order = (torch.sort(scores, dim=1, descending=True, stable=True).indices
             + torch.arange(0, rows, samples, device=device).unsqueeze(1)).view(-1)
    return Generation(tokens[order, :steps], scores.view(-1)[order], alphas[order, :steps])
