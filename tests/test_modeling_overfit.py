"""A tiny model memorises 8 (image, caption) pairs: the loss collapses and greedy decoding returns the captions."""
import torch
import torch.nn.functional as F

from modeling import Captioner, CaptionerConfig

PAD, BOS, EOS = 0, 1, 2


def test_tiny_model_overfits_eight_pairs():
    torch.manual_seed(0)
    vocab_size, pairs = 16, 8
    model = Captioner(CaptionerConfig(vocab_size=vocab_size, encoder_weights="none", dropout=0.0, hidden_dim=128,
                                      attention_dim=64))
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(pairs, 2048, 2, 2, generator=generator)  # precomputed backbone features skip ResNet-50
    captions = torch.full((pairs, 8), PAD)
    for row in range(pairs):
        length = 3 + row % 4
        words = torch.randint(3, vocab_size, (length,), generator=generator)
        captions[row, : length + 2] = torch.cat([torch.tensor([BOS]), words, torch.tensor([EOS])])

    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(150):
        logits = model(features, captions).logits
        loss = F.cross_entropy(logits.flatten(0, 1), captions[:, 1:].flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if loss.item() < 0.01 * losses[0]:
            break

    assert losses[-1] < 0.1 * losses[0], f"loss went from {losses[0]:.3f} to {losses[-1]:.3f}"
    generated = model.generate(features, beam_size=1, max_len=10).tokens
    expected = captions[:, 1:]
    width = max(generated.shape[1], expected.shape[1])
    assert torch.equal(F.pad(generated, (0, width - generated.shape[1]), value=PAD),
                       F.pad(expected, (0, width - expected.shape[1]), value=PAD))
