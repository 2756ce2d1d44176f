"""Additive (Bahdanau) attention over image regions, with the optional Show, Attend and Tell gate."""
from __future__ import annotations

import torch
from torch import nn


class AdditiveAttention(nn.Module):
    """e = w^T tanh(W_f f + W_h h); alpha = softmax(e) over regions; context = beta * sum(alpha f)."""

    def __init__(self, feature_dim: int, hidden_dim: int, attention_dim: int, gate: str = "scalar"):
        super().__init__()
        self.feature_proj = nn.Linear(feature_dim, attention_dim)
        self.hidden_proj = nn.Linear(hidden_dim, attention_dim, bias=False)  # feature_proj's bias suffices
        self.score = nn.Linear(attention_dim, 1, bias=False)  # a bias would cancel in the softmax
        gate_dims = {"scalar": 1, "vector": feature_dim, "none": 0}
        if gate not in gate_dims:
            raise ValueError(f"attention gate must be one of {sorted(gate_dims)}, got {gate!r}")
        self.gate = nn.Linear(hidden_dim, gate_dims[gate]) if gate_dims[gate] else None

    def project_features(self, features: torch.Tensor) -> torch.Tensor:
        """W_f f for (N, R, feature_dim) features; computed once per image and reused at every step."""
        return self.feature_proj(features)

    def forward(self, features: torch.Tensor, projected: torch.Tensor,
                hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Context (N, feature_dim) and attention weights (N, R) for hidden state (N, hidden_dim).

        The energies are computed in ``projected``'s dtype: decoding passes float32 ones under bfloat16 weights, as
        element-wise bfloat16 math (the add and tanh over N x R x attention_dim) is slow on CPUs.
        """
        # tanh in place: one (N, R, attention_dim) tensor fewer to allocate and fill at every step
        hidden_energy = (projected + self.hidden_proj(hidden).unsqueeze(1).to(projected.dtype)).tanh_()
        energy = torch.matmul(hidden_energy, self.score.weight.to(hidden_energy.dtype).t()).squeeze(-1)
        alpha = torch.softmax(energy, dim=1)
        context = torch.bmm(alpha.unsqueeze(1).to(features.dtype), features).squeeze(1)
        if self.gate is not None:
            context = torch.sigmoid(self.gate(hidden)) * context
        return context, alpha
