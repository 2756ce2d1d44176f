"""trainer.training.losses: masked CE and the doubly stochastic attention term, by hand."""
import math

import pytest
import torch

from trainer.training.losses import caption_loss, doubly_stochastic_attention, masked_cross_entropy


def test_doubly_stochastic_term_hand_computed():
    # 2 captions, 3 steps, 2 regions; caption 1 has its last step padded.
    alphas = torch.tensor([[[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]],
                           [[1.0, 0.0], [1.0, 0.0], [0.3, 0.7]]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    # caption 0: region sums 1.6, 1.4 -> 0.36 + 0.16 = 0.52; caption 1: 2.0, 0.0 -> 1 + 1 = 2; mean = 1.26
    assert doubly_stochastic_attention(alphas, mask).item() == pytest.approx(1.26)


def test_masked_cross_entropy_ignores_padding():
    logits = torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0], [5.0, -5.0]]])
    targets = torch.tensor([[1, 1, 0]])
    # position 0: p(1) = 1/4 -> log 4; position 1: log 2; position 2 is padding
    assert masked_cross_entropy(logits, targets, pad_id=0).item() == pytest.approx((math.log(4) + math.log(2)) / 2)


def test_label_smoothing_and_total():
    logits = torch.zeros(1, 2, 4)
    targets = torch.tensor([[3, 0]])
    # uniform logits: CE = log 4 whatever the smoothing
    assert masked_cross_entropy(logits, targets, 0, label_smoothing=0.2).item() == pytest.approx(math.log(4))
    logits = torch.tensor([[[0.0, 0.0, 0.0, math.log(6.0)]]])
    targets = torch.tensor([[3]])
    # p = [1,1,1,6]/9: (1 - 0.2) * -log(6/9) + 0.2 * mean_c(-log p_c)
    expected = 0.8 * -math.log(6 / 9) + 0.2 * (3 * -math.log(1 / 9) - math.log(6 / 9)) / 4
    assert masked_cross_entropy(logits, targets, 0, label_smoothing=0.2).item() == pytest.approx(expected)
    alphas = torch.full((1, 1, 2), 0.5)
    bos = 1
    loss = caption_loss(logits, alphas, torch.tensor([[bos, 3]]), pad_id=0, attention_lambda=2.0)  # BOS, target
    assert loss.attention_reg.item() == pytest.approx(0.5)  # 2 * (1 - 0.5)^2
    assert loss.total.item() == pytest.approx(loss.cross_entropy.item() + 1.0)
