"""Self-critical policy-gradient loss (Rennie et al. 2017) with the mean-of-others baseline (Luo 2020) or the
greedy caption's reward as baseline. Pure functions of tensors, so they are tested without a model."""
from __future__ import annotations

from typing import NamedTuple

import torch

BASELINES = ("mean_others", "greedy")


class ScstLoss(NamedTuple):
    total: torch.Tensor    # policy - entropy_weight * entropy
    policy: torch.Tensor   # -(advantage * sum of the caption's log-probs), averaged over captions
    entropy: torch.Tensor  # mean entropy of the sampling distribution over the captions' live steps


def reward_baseline(rewards: torch.Tensor, baseline: str, greedy_rewards: torch.Tensor | None = None) -> torch.Tensor:
    """Baseline (B, S) for rewards (B, S): the mean reward of the image's other samples, or its greedy caption's."""
    if baseline == "mean_others":
        samples = rewards.shape[1]
        if samples < 2:
            raise ValueError("baseline 'mean_others' needs at least 2 samples per image (scst.samples >= 2)")
        return (rewards.sum(dim=1, keepdim=True) - rewards) / (samples - 1)
    if baseline == "greedy":
        if greedy_rewards is None or greedy_rewards.shape != rewards.shape[:1]:
            raise ValueError(f"baseline 'greedy' needs one greedy reward per image, shape ({rewards.shape[0]},), "
                             f"got {None if greedy_rewards is None else tuple(greedy_rewards.shape)}")
        return greedy_rewards.unsqueeze(1).expand_as(rewards)
    raise ValueError(f"unknown SCST baseline {baseline!r}; expected one of {BASELINES}")


def scst_loss(log_probs: torch.Tensor, mask: torch.Tensor, advantage: torch.Tensor,
              entropy: torch.Tensor | None = None, entropy_weight: float = 0.0) -> ScstLoss:
    """``-(reward - baseline) * sum_t log p(w_t)`` averaged over captions, minus ``entropy_weight`` x mean entropy.

    log_probs (N, L) of the sampled words, mask (N, L) true up to and including each caption's <eos> (steps after it
    contribute nothing), advantage (N,) reward minus baseline (treated as a constant), entropy (N, L) per step.
    """
    if log_probs.shape != mask.shape or advantage.shape != log_probs.shape[:1]:
        raise ValueError(f"log_probs {tuple(log_probs.shape)}, mask {tuple(mask.shape)} and advantage "
                         f"{tuple(advantage.shape)} must be (N, L), (N, L) and (N,)")
    live = mask.to(log_probs.dtype)
    caption_log_prob = (log_probs * live).sum(dim=1)
    policy = -(advantage.detach().to(log_probs.dtype) * caption_log_prob).mean()
    if entropy is None:
        mean_entropy = log_probs.new_zeros(())
    else:
        mean_entropy = (entropy * live).sum() / live.sum().clamp_min(1.0)
    return ScstLoss(policy - entropy_weight * mean_entropy, policy, mean_entropy)
