"""trainer.training.speed_options and the fp16 loss scaler on resume: every speed option trains like the default (CPU)."""
import copy
import json

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState

from data_pipelines.vocab import Vocabulary
from modeling import Captioner, CaptionerConfig
from trainer.checkpointing.checkpoint import load_checkpoint, step_checkpoint_dir, write_checkpoint
from trainer.checkpointing.train_state import Progress, restore_training_checkpoint, save_training_checkpoint
from trainer.config.schema import load_config
from trainer.training.losses import caption_loss
from trainer.training.speed_options import apply_speed_options, build_optimizer, compile_recurrent_step

VOCAB = Vocabulary(["a", "red", "circle", "square", "on", "blue"])
SIZES = dict(vocab_size=len(VOCAB), encoder_weights="none", feature_dim=16, embed_dim=16, attention_dim=16,
             hidden_dim=32, dropout=0.0)


def config_with(*overrides: str):
    return load_config(None, ["data.root=unused", "optim.lr=1e-2", *overrides])


def batch():
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(4, 2048, 2, 2, generator=generator)
    captions = torch.randint(4, len(VOCAB), (4, 2, 7), generator=generator)
    captions[..., 0] = VOCAB.bos_id
    captions[0, :, 5:], captions[1, 0, 3:] = VOCAB.pad_id, VOCAB.pad_id  # rows end at different steps
    return features, captions


def train_losses(model, optimizer, steps: int = 3) -> list[float]:
    features, captions = batch()
    losses = []
    for _ in range(steps):
        output = model(features, captions)
        loss = caption_loss(output.logits, output.alphas, captions.flatten(0, 1), VOCAB.pad_id, 0.01).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def fresh_model() -> Captioner:
    torch.manual_seed(0)
    return Captioner(CaptionerConfig(**SIZES))


@pytest.mark.parametrize("implementation", ["for_loop", "foreach", "fused"])
def test_adamw_kernels_train_like_the_default(implementation):
    reference = fresh_model()
    reference_losses = train_losses(reference, build_optimizer(config_with(), reference.trainable_parameters()))
    model = fresh_model()
    optimizer = build_optimizer(config_with(f"optim.implementation={implementation}"), model.trainable_parameters())
    assert optimizer.defaults["fused" if implementation == "fused" else "foreach"] is (implementation != "for_loop")
    assert train_losses(model, optimizer) == pytest.approx(reference_losses, rel=1e-6)
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_unknown_optimizer_implementation_is_a_config_error():
    with pytest.raises(ValueError, match="'optim.implementation': 'apex' is not one of"):
        config_with("optim.implementation=apex")


def test_resume_uses_this_runs_adamw_kernel(tmp_path):
    model = fresh_model()
    optimizer = build_optimizer(config_with("optim.implementation=fused"), model.trainable_parameters())
    train_losses(model, optimizer, steps=1)
    write_checkpoint(step_checkpoint_dir(tmp_path, 1), model, optimizer, VOCAB, {"step": 1})
    restored = fresh_model()
    restored_optimizer = build_optimizer(config_with("optim.implementation=foreach"), restored.trainable_parameters())
    load_checkpoint(step_checkpoint_dir(tmp_path, 1), restored, restored_optimizer)
    group = restored_optimizer.param_groups[0]
    assert group["foreach"] is True and not group["fused"] and group["lr"] == 1e-2
    assert restored_optimizer.state_dict()["state"][0]["exp_avg"].abs().sum() > 0


@pytest.mark.slow  # inductor compiles C++ kernels for forward and backward: ~80 s on 2 loaded cores
def test_compiled_recurrent_step_trains_like_eager():
    eager = fresh_model()
    compiled = copy.deepcopy(eager)
    compile_recurrent_step(compiled.decoder)
    eager_losses = train_losses(eager, torch.optim.AdamW(eager.trainable_parameters(), lr=1e-2), steps=2)
    compiled_losses = train_losses(compiled, torch.optim.AdamW(compiled.trainable_parameters(), lr=1e-2), steps=2)
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-5)
    for name, tensor in eager.state_dict().items():
        torch.testing.assert_close(compiled.state_dict()[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_channels_last_images_encode_like_the_default(tmp_path):
    model = fresh_model().eval()
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    expected = model.encode(images)
    model.encoder.use_channels_last()
    assert model.encoder.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(model.encode(images), expected, rtol=1e-4, atol=1e-4)
    model.save_pretrained(tmp_path)  # weights are written in the default layout and load into a default model
    torch.testing.assert_close(Captioner.from_pretrained(tmp_path).eval().encode(images), expected, rtol=1e-4,
                               atol=1e-4)


def scaled_step(scaler, model, optimizer, gradient: float) -> None:
    """One loss-scaled optimizer step whose first parameter's gradient is ``gradient`` (inf: an overflow)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(model.trainable_parameters()[0].sum() * gradient).backward()
    scaler.step(optimizer)
    scaler.update()


def test_grad_scaler_state_is_restored_exactly_on_resume(tmp_path, tiny_prepared):
    """Accelerate's fp16 GradScaler (CUDA only) is saved as JSON in trainer_state.json; here a CPU GradScaler stands in."""
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    config = config_with(f"output_dir={tmp_path}", f"data.root={tiny_prepared}")  # checkpoints record its fingerprint
    accelerator = Accelerator(cpu=True, step_scheduler_with_optimizer=False)
    model = fresh_model()
    optimizer = build_optimizer(config, model.trainable_parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    for gradient in (float("inf"), 1.0, 1.0):  # one overflow (scale halves), then two good steps (tracker 2)
        scaled_step(accelerator.scaler, model, optimizer, gradient)
    saved = accelerator.scaler.state_dict()
    assert saved["scale"] == 512.0 and saved["_growth_tracker"] == 2
    target = step_checkpoint_dir(tmp_path, 3)
    save_training_checkpoint(accelerator, target, model, optimizer, scheduler, VOCAB, config, Progress(step=3), {})
    assert json.loads((target / "trainer_state.json").read_text())["grad_scaler"] == saved

    accelerator.scaler = torch.amp.GradScaler("cpu")
    restored = fresh_model()
    restored_optimizer = build_optimizer(config, restored.trainable_parameters())
    restored_scheduler = torch.optim.lr_scheduler.LambdaLR(restored_optimizer, lambda step: 1.0)
    progress = restore_training_checkpoint(accelerator, target, restored, restored_optimizer, restored_scheduler,
                                           VOCAB, config, {})
    assert progress.step == 3 and accelerator.scaler.state_dict() == saved
    scaled_step(accelerator.scaler, restored, restored_optimizer, 1.0)  # the third good step in a row: scale grows
    assert accelerator.scaler.get_scale() == 1024.0 and accelerator.scaler.state_dict()["_growth_tracker"] == 0


def test_config_switches_set_up_the_model():
    model = fresh_model()
    step = model.decoder.recurrent_step
    apply_speed_options(config_with("train.compile=true", "train.channels_last=true"), model)
    assert model.encoder.channels_last
    assert model.decoder.recurrent_step._torchdynamo_orig_callable == step  # compiled lazily, at the first call
