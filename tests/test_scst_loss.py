"""SCST loss: baselines, masking after <eos>, and a toy bandit where the rewarded caption's probability rises."""
import pytest
import torch

from modeling import CaptionerConfig
from modeling.decoder import Decoder
from modeling.sampling import sample_captions
from trainer.scst.loss import reward_baseline, scst_loss

PAD, BOS, EOS = 0, 1, 2


def test_mean_others_advantage_sums_to_zero_per_image():
    rewards = torch.rand(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    baseline = reward_baseline(rewards, "mean_others")
    assert baseline[2, 1] == pytest.approx((rewards[2].sum() - rewards[2, 1]).item() / 4)
    torch.testing.assert_close((rewards - baseline).sum(dim=1), torch.zeros(6, dtype=torch.float64), rtol=0,
                               atol=1e-12)


def test_greedy_baseline_and_errors():
    rewards = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert torch.equal(reward_baseline(rewards, "greedy", torch.tensor([0.5, 4.0])),
                       torch.tensor([[0.5, 0.5], [4.0, 4.0]]))
    with pytest.raises(ValueError, match="at least 2 samples"):
        reward_baseline(rewards[:, :1], "mean_others")
    with pytest.raises(ValueError, match="one greedy reward per image"):
        reward_baseline(rewards, "greedy")
    with pytest.raises(ValueError, match="mean_others"):
        reward_baseline(rewards, "average")


def test_steps_after_eos_get_no_gradient_and_do_not_change_the_loss():
    log_probs = -torch.rand(3, 6, generator=torch.Generator().manual_seed(1))
    log_probs.requires_grad_(True)
    mask = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    advantage = torch.tensor([0.5, -1.0, 2.0])
    loss = scst_loss(log_probs, mask, advantage)
    loss.total.backward()
    assert (log_probs.grad[~mask] == 0).all() and (log_probs.grad[mask] != 0).all()
    expected = -(advantage * (log_probs.detach() * mask).sum(dim=1)).mean()
    assert loss.policy.item() == pytest.approx(expected.item())
    garbage = log_probs.detach().masked_fill(~mask, -50.0)
    assert scst_loss(garbage, mask, advantage).total.item() == pytest.approx(loss.total.item())
    entropy = torch.ones(3, 6)
    with_bonus = scst_loss(log_probs.detach(), mask, advantage, entropy * 2, entropy_weight=0.1)
    assert with_bonus.entropy.item() == pytest.approx(2.0)  # mean over live steps only
    assert with_bonus.total.item() == pytest.approx(loss.total.item() - 0.2)


def caption_log_prob(decoder, features, caption):
    """log p(caption) by a teacher-forced pass, <bos>/<pad> excluded as in sampling."""
    captions = torch.tensor([[BOS, *caption]])
    with torch.no_grad():
        logits, _ = decoder(features, captions)
    log_probs = torch.log_softmax(logits.index_fill(2, torch.tensor([BOS, PAD]), float("-inf")), dim=-1)
    return log_probs.gather(2, captions[:, 1:].unsqueeze(-1)).sum().item()


def test_toy_bandit_rewarded_caption_becomes_likely():
    """Words 3..5; only "4 5 <eos>" earns a reward. SCST with the mean-of-others baseline makes it the mode."""
    torch.manual_seed(0)
    decoder = Decoder(CaptionerConfig(vocab_size=6, feature_dim=8, embed_dim=8, attention_dim=8, hidden_dim=16,
                                      dropout=0.0))
    features = torch.randn(1, 4, 8)
    target = [4, 5, EOS]
    optimizer = torch.optim.Adam(decoder.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(0)
    before = caption_log_prob(decoder, features, target)
    for _ in range(60):
        out = sample_captions(decoder, features, max_len=4, bos_id=BOS, eos_id=EOS, pad_id=PAD, num_samples=8,
                              generator=generator)
        rewards = torch.tensor([[float(row[:3] == target) for row in out.tokens.tolist()]])
        advantage = (rewards - reward_baseline(rewards, "mean_others")).view(-1)
        loss = scst_loss(out.log_probs, out.mask, advantage)
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
    after = caption_log_prob(decoder, features, target)
    assert before < -2.0 and after > before + 1.5 and after > -0.5  # from rare to most of the probability mass
