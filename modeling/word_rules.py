"""The word rules decoding options impose on each step: words they forbid get log-probability -inf."""
from __future__ import annotations

import torch

from .decoding_options import DecodingOptions


class WordRules:
    """Forbids words per row at a step: <bos>/<pad> always, ``suppress_ids``, <eos> before ``min_len`` words, and
    words completing an n-gram already in the row's caption (``no_repeat_ngram_size``)."""

    def __init__(self, options: DecodingOptions, bos_id: int, pad_id: int, eos_id: int, device: torch.device):
        self.never = torch.tensor(sorted({bos_id, pad_id, *options.suppress_ids}), device=device)
        self.min_len, self.eos_id, self.pad_id, self.ngram = options.min_len, eos_id, pad_id, options.no_repeat_ngram_size

    def log_probs(self, logits: torch.Tensor, step: int, words_so_far: torch.Tensor | None) -> torch.Tensor:
        """log_softmax(logits) in float32 with forbidden words at -inf; ``words_so_far`` (rows, step) is needed only
        with no_repeat_ngram_size."""
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        log_probs.index_fill_(1, self.never, float("-inf"))
        if step < self.min_len:
            log_probs[:, self.eos_id] = float("-inf")
        if self.ngram and words_so_far is not None and words_so_far.shape[1] >= self.ngram:
            words, banned = repeated_ngram_words(words_so_far, self.ngram)
            log_probs.scatter_(1, torch.where(banned, words, self.pad_id), float("-inf"))  # <pad> is -inf anyway
        return log_probs


def repeated_ngram_words(words: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``words`` (rows, t), the words that would complete an n-gram already in it: (rows, t-n+1)
    word ids and a mask of which of them are banned (their window's first n-1 words equal the row's last n-1)."""
    windows = words.unfold(1, n, 1)  # (rows, t-n+1, n)
    if n == 1:
        return windows[:, :, 0], torch.ones_like(windows[:, :, 0], dtype=torch.bool)
    suffix = words[:, words.shape[1] - n + 1:].unsqueeze(1)
    return windows[:, :, n - 1], (windows[:, :, :n - 1] == suffix).all(dim=2)
