"""The GPU training options on a CUDA device: pinned lane batches, fused AdamW and the compiled recurrent step train
like the defaults. Unverified here: written on a machine without a GPU."""
import copy

import pytest
import torch
from distributed_runs import make_dataset

from data_pipelines.train_stream import build_lane_loader
from data_pipelines.vocab import Vocabulary
from modeling import Captioner, CaptionerConfig
from trainer.config.schema import load_config
from trainer.training.losses import caption_loss
from trainer.training.speed_options import build_optimizer, compile_recurrent_step

pytestmark = pytest.mark.gpu
SIZES = dict(vocab_size=30, encoder_weights="none", feature_dim=32, embed_dim=32, attention_dim=32, hidden_dim=64,
             dropout=0.0)


def test_lane_batches_are_pinned_for_non_blocking_copies(tmp_path):
    dataset = make_dataset(tmp_path / "data")
    config = load_config(None, [f"data.root={dataset}", "data.num_workers=1", "data.image_size=32"])
    loader = build_lane_loader(dataset, Vocabulary.load(dataset / "vocab.json"), config.train_loader_options(2), 2,
                               range(1))
    batch = next(iter(loader))
    assert batch["pixels"].is_pinned() and batch["captions"].is_pinned()


def losses_on_cuda(model, optimizer, steps: int = 3) -> list[float]:
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(8, 2048, 2, 2, generator=generator).cuda()
    captions = torch.randint(4, 30, (8, 2, 9), generator=generator)
    captions[..., 0], captions[0, :, 6:], captions[3, 1, 4:] = 1, 0, 0
    captions = captions.cuda()
    losses = []
    for _ in range(steps):
        output = model(features, captions)
        loss = caption_loss(output.logits, output.alphas, captions.flatten(0, 1), 0, 0.01).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("implementation", ["fused", "compile"])
def test_fused_adamw_and_compiled_step_train_like_the_default_on_cuda(implementation):
    torch.manual_seed(0)
    reference = Captioner(CaptionerConfig(**SIZES)).cuda()
    model = copy.deepcopy(reference)
    default = load_config(None, ["data.root=unused"])
    expected = losses_on_cuda(reference, build_optimizer(default, reference.trainable_parameters()))
    if implementation == "compile":
        compile_recurrent_step(model.decoder)
        optimizer = build_optimizer(default, model.trainable_parameters())
    else:
        optimizer = build_optimizer(load_config(None, ["data.root=unused", "optim.implementation=fused"]),
                                    model.trainable_parameters())
    assert losses_on_cuda(model, optimizer) == pytest.approx(expected, rel=1e-4)
