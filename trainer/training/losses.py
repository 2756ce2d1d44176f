"""Captioning loss: masked cross-entropy plus the doubly stochastic attention regulariser (Xu et al. 2015, eq. 14)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class CaptionLoss(NamedTuple):
    total: torch.Tensor
    cross_entropy: torch.Tensor
    attention_reg: torch.Tensor


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, pad_id: int,
                         label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean token cross-entropy over real (non-pad) targets. logits (N, T, V), targets (N, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                           ignore_index=pad_id, label_smoothing=label_smoothing)


def doubly_stochastic_attention(alphas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum_regions (1 - sum_{real t} alpha_t)^2``, averaged over the batch.

    alphas (N, T, R) attention weights, mask (N, T) true at real (non-pad) steps. Normalisation: summed over the R
    regions as in the paper's ``sum_i (1 - sum_t alpha_ti)^2`` and averaged over the N captions (not over regions or
    steps), so ``lambda = 1`` keeps the paper's weighting per caption; padded steps contribute no attention mass.
    """
    attention_per_region = (alphas.float() * mask.unsqueeze(-1).float()).sum(dim=1)  # (N, R)
    return ((1.0 - attention_per_region) ** 2).sum(dim=1).mean()


def caption_loss(logits: torch.Tensor, alphas: torch.Tensor, captions: torch.Tensor, pad_id: int,
                 attention_lambda: float = 1.0, label_smoothing: float = 0.0) -> CaptionLoss:
    """``cross_entropy + attention_lambda * attention_reg`` for one batch of model outputs.

    ``captions`` (N, T+1) are the token rows the model was fed (BOS first); the model's output contract is that
    ``logits[:, t]`` and ``alphas[:, t]`` (N, T, ...) belong to the step that predicts ``captions[:, t + 1]``.
    """
    targets = captions[:, 1:]
    cross_entropy = masked_cross_entropy(logits, targets, pad_id, label_smoothing)
    attention_reg = doubly_stochastic_attention(alphas, targets != pad_id)
    return CaptionLoss(cross_entropy + attention_lambda * attention_reg, cross_entropy, attention_reg)
