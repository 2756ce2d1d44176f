"""LSTMCell decoder with attention, trained with (scheduled) teacher forcing over a fixed-length loop."""
from __future__ import annotations

import torch
from torch import nn

from .attention import AdditiveAttention
from .config import CaptionerConfig

DecoderState = tuple[torch.Tensor, torch.Tensor]


class Decoder(nn.Module):
    """Input at each step: [attention context ; embedding of the previous word]; output: vocabulary logits."""

    def __init__(self, config: CaptionerConfig):
        super().__init__()
        self.scheduled_sampling = config.scheduled_sampling
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=config.pad_id)
        self.attention = AdditiveAttention(config.feature_dim, config.hidden_dim, config.attention_dim,
                                           config.attention_gate)
        self.lstm = nn.LSTMCell(config.feature_dim + config.embed_dim, config.hidden_dim)
        self.init_h = nn.Linear(config.feature_dim, config.hidden_dim)
        self.init_c = nn.Linear(config.feature_dim, config.hidden_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_dim, config.vocab_size)

    def init_state(self, features: torch.Tensor) -> DecoderState:
        """h0, c0 = tanh(Linear(mean of the region features))."""
        mean = features.mean(dim=1)
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))

    def step(self, words: torch.Tensor, state: DecoderState, features: torch.Tensor,
             projected: torch.Tensor) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One step from previous words (N,): logits (N, V), new state, attention weights (N, R)."""
        hidden, cell = state
        context, alpha = self.attention(features, projected, hidden)
        hidden, cell = self.lstm(torch.cat([context, self.embedding(words)], dim=1), (hidden, cell))
        return self.output(self.dropout(hidden)), (hidden, cell), alpha

    def _predict(self, logits: torch.Tensor) -> torch.Tensor:
        if self.scheduled_sampling == "argmax":
            return logits.argmax(dim=-1)
        return torch.multinomial(torch.softmax(logits.float(), dim=-1), 1).squeeze(1)

    def forward(self, features: torch.Tensor, captions: torch.Tensor,
                teacher_forcing_ratio: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, T-1, V) and alphas (N, T-1, R) for captions (N, T); logits[:, t] predicts captions[:, t+1].

        For t >= 1 each row's input is, with probability 1 - teacher_forcing_ratio, the model's own (detached)
        prediction of the previous step instead of the ground-truth word. Ratio 1 draws no random numbers.
        """
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(f"teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}")
        if captions.dim() != 2 or captions.shape[1] < 2 or captions.shape[0] != features.shape[0]:
            raise ValueError(f"captions must be (N, T>=2) with N={features.shape[0]} rows, got {tuple(captions.shape)}")
        projected = self.attention.project_features(features)
        state = self.init_state(features)
        all_logits, all_alphas = [], []
        words = captions[:, 0]
        for t in range(captions.shape[1] - 1):
            if t > 0:
                words = captions[:, t]
                if teacher_forcing_ratio < 1.0:
                    use_prediction = torch.rand(words.shape, device=words.device) >= teacher_forcing_ratio
                    words = torch.where(use_prediction, self._predict(all_logits[-1].detach()), words)
            logits, state, alpha = self.step(words, state, features, projected)
            all_logits.append(logits)
            all_alphas.append(alpha)
        return torch.stack(all_logits, dim=1), torch.stack(all_alphas, dim=1)
