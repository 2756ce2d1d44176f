"""model.finetune_from: gradients reach exactly the asked backbone stages, BatchNorm statistics stay frozen, the trained
stages get their own parameter group, a cached frozen prefix feeds the trained stages, and the default (none) keeps
the frozen backbone, its parameter group and its state dict."""
import pytest
import torch
from torchvision.models import resnet50

from modeling import Captioner, CaptionerConfig
from modeling.config import BACKBONE_STAGES
from modeling.encoder import backbone_fingerprint
from trainer.config.schema import load_config
from trainer.training.parameter_groups import parameter_groups

CAPTIONS = torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])
STEM = ("conv1", "bn1")


def tiny(finetune_from: str = "none") -> Captioner:
    torch.manual_seed(0)
    return Captioner(CaptionerConfig(vocab_size=12, encoder_weights="none", feature_dim=8, embed_dim=8,
                                     attention_dim=8, hidden_dim=16, finetune_from=finetune_from))


def stage_of(name: str) -> str:
    return name.split(".", 1)[0]


def backward_once(model: Captioner, inputs: torch.Tensor) -> None:
    model.train()
    model(inputs, CAPTIONS).logits.sum().backward()


@pytest.mark.parametrize("finetune_from", ["layer2", "layer3", "layer4"])
def test_gradients_reach_exactly_the_asked_stages_and_batchnorm_stats_stay(finetune_from):
    model = tiny(finetune_from)
    assert model.training and not model.encoder.input_norm.training  # from construction on, as the trainer uses it
    backbone = model.encoder.backbone
    buffers_before = {name: tensor.clone() for name, tensor in backbone.named_buffers()}
    backward_once(model, torch.randn(2, 3, 32, 32))
    trained = BACKBONE_STAGES[BACKBONE_STAGES.index(finetune_from):]
    for name, parameter in backbone.named_parameters():
        if stage_of(name) in trained:
            assert parameter.requires_grad and parameter.grad is not None, name
        else:
            assert not parameter.requires_grad and parameter.grad is None, name
    assert all(parameter.grad is not None for parameter in model.decoder.parameters())
    assert sum(bool(parameter.grad.abs().sum()) for name, parameter in backbone.named_parameters()
               if stage_of(name) == finetune_from) > 0  # the first trained stage receives a non-zero gradient
    assert not backbone.training and all(not module.training for module in backbone.modules())
    for name, tensor in backbone.named_buffers():  # running means, variances, batch counts: untouched by train mode
        assert torch.equal(tensor, buffers_before[name]), name
    assert model.training and not model.encoder.input_norm.training  # the channels' BatchNorm keeps stage 1's too


def test_the_frozen_default_keeps_one_group_the_head_only_and_the_state_dict_keys():
    model = tiny()
    backbone = model.encoder.backbone
    assert backbone.trainable_stages() == () and model.backbone_parameters() == []
    assert not any(parameter.requires_grad for parameter in backbone.parameters())
    in_backbone = {id(parameter) for parameter in backbone.parameters()}
    head = [parameter for parameter in model.parameters() if id(parameter) not in in_backbone]
    assert [id(p) for p in model.trainable_parameters()] == [id(p) for p in head]
    groups = parameter_groups(model, load_config(None, ["data.root=unused"]).optim)
    assert len(groups) == 1 and set(groups[0]) == {"params"} and groups[0]["params"] == model.trainable_parameters()
    expected_backbone = {f"encoder.backbone.{key}" for key in resnet50(weights=None).state_dict()
                         if not key.startswith("fc.")}
    keys = set(model.state_dict())
    assert {key for key in keys if key.startswith("encoder.backbone.")} == expected_backbone
    assert keys == set(tiny("layer4").state_dict())  # fine-tuning adds no weights: checkpoints keep their layout
    features = backbone(torch.randn(1, 3, 32, 32))
    assert not features.requires_grad  # the whole backbone ran without gradients: no stage-2 path


def test_trained_stages_have_their_own_group_at_the_encoder_lr():
    model = tiny("layer3")
    optim = load_config(None, ["data.root=unused", "optim.lr=4e-4", "optim.encoder_lr_factor=0.25"]).optim
    head, stages = parameter_groups(model, optim)
    assert "lr" not in head and stages["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in stages["params"]} == {id(p) for p in model.backbone_parameters()}
    assert {id(p) for p in head["params"] + stages["params"]} == {id(p) for p in model.trainable_parameters()}
    assert not {id(p) for p in head["params"]} & {id(p) for p in stages["params"]}
    optimizer = torch.optim.AdamW(parameter_groups(model, optim), lr=optim.lr)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([4e-4, 1e-4])


def test_a_cached_frozen_prefix_gives_the_image_path_and_trains_the_later_stages():
    model = tiny("layer4")
    images = torch.randn(2, 3, 64, 64)
    prefix = model.encoder.backbone(images, through="layer3")
    assert prefix.shape == (2, 1024, 4, 4) and not prefix.requires_grad
    model.eval()
    torch.testing.assert_close(model.encode(prefix), model.encode(images), rtol=0, atol=0)
    backward_once(model, prefix)
    assert all(parameter.grad is not None for parameter in model.encoder.backbone.layer4.parameters())


def test_a_cached_output_of_a_trained_stage_is_refused():
    model = tiny("layer3").eval()
    with pytest.raises(ValueError, match="output of layer3 .* trains layer3"):
        model.encode(torch.randn(1, 1024, 2, 2))
    with pytest.raises(ValueError, match="output of layer4 .* trains layer3"):
        model.encode(torch.randn(1, 2048, 1, 1))
    model.encode(torch.randn(1, 512, 4, 4))  # layer2's output: frozen, runs layer3 and layer4


def test_prefix_fingerprints_cover_the_stages_through_the_cached_one():
    frozen, tuned = tiny().encoder.backbone, tiny("layer4").encoder.backbone
    torch.nn.init.zeros_(tuned.layer4[0].conv1.weight)  # as if layer4 had been trained
    assert backbone_fingerprint(frozen, "layer3") == backbone_fingerprint(tuned, "layer3")
    assert backbone_fingerprint(frozen) != backbone_fingerprint(tuned)
    torch.nn.init.zeros_(tuned.get_submodule(STEM[0]).weight)
    assert backbone_fingerprint(frozen, "layer1") != backbone_fingerprint(tuned, "layer1")


def test_finetune_from_is_a_checked_model_setting():
    stage2 = ["data.root=x", "model.finetune_from=layer4", "train.init_from=runs/x/best"]
    assert load_config(None, stage2).model.finetune_from == "layer4"
    with pytest.raises(ValueError, match="model.finetune_from"):
        load_config(None, ["data.root=x", "model.finetune_from=layer5"])
    with pytest.raises(ValueError, match="'model.finetune_from' = 'layer4' needs train.init_from"):
        load_config(None, stage2[:2])
    assert load_config(None, [*stage2[:2], "model.feature_norm=layer"]).model.finetune_from == "layer4"
    with pytest.raises(ValueError, match="optim.encoder_lr_factor"):
        load_config(None, ["data.root=x", "optim.encoder_lr_factor=0"])
