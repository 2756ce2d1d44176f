"""LSTMCell decoder with attention, trained with (scheduled) teacher forcing.

Training does no work on finished captions: rows are sorted by length and each step runs only the rows whose
caption is still going (the active rows are a prefix of the sorted batch), the ground-truth embeddings enter the LSTM
gates through one matmul for all steps, and the vocabulary projection runs once over the packed hidden states.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AdditiveAttention
from .config import CaptionerConfig

DecoderState = tuple[torch.Tensor, torch.Tensor]


def decode_lengths(captions: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Steps each caption (N, T) needs: the position of its last non-pad token (step t predicts token t+1)."""
    positions = torch.arange(captions.shape[1], device=captions.device)
    return torch.where(captions != pad_id, positions, 0).amax(dim=1)


def sample_words(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Draw one word per row from softmax(logits) by inverting its CDF at the given uniforms in [0, 1)."""
    cumulative = torch.softmax(logits.float(), dim=-1).cumsum(dim=-1)
    targets = (uniforms.float() * cumulative[:, -1]).unsqueeze(1)
    return torch.searchsorted(cumulative, targets, right=True).squeeze(1).clamp_(max=logits.shape[-1] - 1)


class Decoder(nn.Module):
    """Input at each step: [attention context ; embedding of the previous word]; output: vocabulary logits."""

    def __init__(self, config: CaptionerConfig):
        super().__init__()
        self.scheduled_sampling = config.scheduled_sampling
        self.pad_id = config.pad_id
        self.feature_dim = config.feature_dim
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

    def predict(self, logits: torch.Tensor, uniforms: torch.Tensor | None) -> torch.Tensor:
        """The model's own next word: argmax, or a sample drawn with ``uniforms`` (one per row)."""
        if self.scheduled_sampling == "argmax":
            return logits.argmax(dim=-1)
        return sample_words(logits, uniforms)

    def forward(self, features: torch.Tensor, captions: torch.Tensor,
                teacher_forcing_ratio: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, T-1, V) and alphas (N, T-1, R) for captions (N, T); logits[:, t] predicts captions[:, t+1].

        Steps after a caption's last non-pad token are not computed: their logits and alphas are zeros. For t >= 1
        each row's input is, with probability 1 - teacher_forcing_ratio, the model's own (detached) prediction of the
        previous step instead of the ground-truth word. Random draws do not depend on the lengths: at every step
        t = 0..T-2 the forward draws, in this order, ``rand(N)`` (use the prediction where >= ratio; t >= 1 and
        ratio < 1 only), ``rand(N)`` (sampling uniforms; the same, "sample" mode only) and the dropout mask of all N
        rows (training with dropout > 0), exactly as a loop over every row and step would. Ratio 1 in eval mode
        draws nothing.
        """
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(f"teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}")
        if captions.dim() != 2 or captions.shape[1] < 2 or captions.shape[0] != features.shape[0]:
            raise ValueError(f"captions must be (N, T>=2) with N={features.shape[0]} rows, got {tuple(captions.shape)}")
        rows, steps = captions.shape[0], captions.shape[1] - 1
        lengths, order = decode_lengths(captions, self.pad_id).sort(descending=True, stable=True)
        is_active = lengths.unsqueeze(0) > torch.arange(steps, device=captions.device).unsqueeze(1)  # (T-1, N)
        active_rows = is_active.sum(dim=1).tolist()
        features, captions = features[order], captions[order]
        projected = self.attention.project_features(features)
        hidden, cell = self.init_state(features)

        context_weight, embedding_weight = self.lstm.weight_ih.split(
            [self.feature_dim, self.embedding.embedding_dim], dim=1)
        gate_bias = self.lstm.bias_ih + self.lstm.bias_hh
        teacher_gates = F.linear(self.embedding(captions[:, :steps]), embedding_weight, gate_bias)  # (N, T-1, 4H)
        recurrent_weight = torch.cat([context_weight, self.lstm.weight_hh], dim=1).t()
        mixing = teacher_forcing_ratio < 1.0
        masking = self.training and self.dropout.p > 0
        hiddens, alphas = [], []
        for t in range(steps):
            if mixing and t > 0:
                use_prediction = torch.rand(rows, device=captions.device)[order] >= teacher_forcing_ratio
                uniforms = torch.rand(rows, device=captions.device)[order] if self.scheduled_sampling == "sample" \
                    else None
            keep = self.dropout(hidden.new_ones(rows, hidden.shape[1]))[order] if masking else None
            active = active_rows[t]
            if active == 0:
                continue
            hidden, cell = hidden[:active], cell[:active]
            gates = teacher_gates[:active, t]
            if mixing and t > 0:
                gates = self._predicted_word_gates(gates, use_prediction[:active], hiddens[-1],
                                                   None if uniforms is None else uniforms[:active],
                                                   embedding_weight, gate_bias)
            hidden, cell, alpha = self.recurrent_step(gates, features[:active], projected[:active], hidden, cell,
                                                      recurrent_weight)
            hiddens.append(hidden * keep[:active] if masking else hidden)
            alphas.append(alpha)

        # packed rows are time-major (like pack_padded_sequence); put them back at (original row, step)
        step_index, sorted_row = is_active.nonzero(as_tuple=True)
        flat_index = order[sorted_row] * steps + step_index
        packed_logits = self.output(torch.cat(hiddens)) if hiddens else features.new_zeros(0, self.output.out_features)
        packed_alphas = torch.cat(alphas) if alphas else features.new_zeros(0, features.shape[1])
        logits = packed_logits.new_zeros(rows * steps, packed_logits.shape[1]).index_copy(0, flat_index, packed_logits)
        alpha_grid = packed_alphas.new_zeros(rows * steps, packed_alphas.shape[1]).index_copy(0, flat_index,
                                                                                              packed_alphas)
        return logits.view(rows, steps, -1), alpha_grid.view(rows, steps, -1)

    def recurrent_step(self, gates: torch.Tensor, features: torch.Tensor, projected: torch.Tensor,
                       hidden: torch.Tensor, cell: torch.Tensor,
                       recurrent_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One training step of the active rows: attention, LSTM gates (``gates`` holds the word's term), new state.
        The unit ``train.compile`` compiles: its shapes differ only in the number of rows from step to step."""
        context, alpha = self.attention(features, projected, hidden)
        gates = torch.addmm(gates, torch.cat([context, hidden], dim=1), recurrent_weight)
        in_gate, forget_gate, cell_input, out_gate = gates.chunk(4, dim=1)
        cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(in_gate) * torch.tanh(cell_input)
        hidden = torch.sigmoid(out_gate) * torch.tanh(cell)
        return hidden, cell, alpha

    def _predicted_word_gates(self, gates: torch.Tensor, use_prediction: torch.Tensor, previous_hidden: torch.Tensor,
                              uniforms: torch.Tensor | None, embedding_weight: torch.Tensor,
                              gate_bias: torch.Tensor) -> torch.Tensor:
        """Swap the ground-truth embedding term of the chosen rows for that of the model's previous prediction."""
        chosen = use_prediction.nonzero().squeeze(1)
        if chosen.numel() == 0:
            return gates
        with torch.no_grad():
            previous_logits = self.output(previous_hidden[chosen])
            words = self.predict(previous_logits, None if uniforms is None else uniforms[chosen])
        return gates.index_copy(0, chosen, F.linear(self.embedding(words), embedding_weight, gate_bias))
