"""Encoder: backbone weights sources, freezing, region feature shapes, precomputed-feature path."""
from urllib.error import URLError

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import ResNet50_Weights, resnet50

from modeling import Captioner, CaptionerConfig
from modeling.encoder import backbone_fingerprint, build_backbone


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Captioner(CaptionerConfig(vocab_size=20, encoder_weights="none"))


@pytest.fixture(scope="module")
def other_resnet_state():
    """A full torchvision ResNet-50 state dict (fc included) that differs from the 'none' backbone."""
    torch.manual_seed(7)
    return resnet50(weights=None).state_dict()


@pytest.mark.parametrize("size", [(32, 32), (48, 64), (64, 64)])
def test_region_features_are_49_by_256_for_any_size_from_32px(model, size):
    features = model.encode(torch.randn(2, 3, *size))
    assert features.shape == (2, 49, 256)


def test_precomputed_backbone_features_equal_the_image_path(model):
    images = torch.randn(2, 3, 64, 64)
    backbone_features = model.encoder.backbone(images)
    assert backbone_features.shape == (2, 2048, 2, 2)
    torch.testing.assert_close(model.encode(backbone_features), model.encode(images))


def test_encoder_rejects_bad_inputs(model):
    with pytest.raises(ValueError, match="at least 32 px"):
        model.encode(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(B,3,H,W\)"):
        model.encode(torch.randn(1, 5, 64, 64))


def test_backbone_is_frozen_and_keeps_batchnorm_stats_through_a_training_step():
    model = Captioner(CaptionerConfig(vocab_size=20, encoder_weights="none"))
    model.train()
    backbone = model.encoder.backbone
    assert not backbone.training
    assert all(not module.training for module in backbone.modules())
    assert all(not p.requires_grad for p in backbone.parameters())
    before = {name: tensor.clone() for name, tensor in backbone.state_dict().items()}
    projection_before = model.encoder.project.weight.detach().clone()

    captions = torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    logits = model(torch.randn(2, 3, 64, 64), captions).logits
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), captions[:, 1:].flatten(), ignore_index=0).backward()
    optimizer.step()

    for name, tensor in backbone.state_dict().items():
        assert torch.equal(tensor, before[name]), f"backbone {name} changed"
    assert all(p.grad is None for p in backbone.parameters())
    assert not torch.equal(model.encoder.project.weight, projection_before)


def test_random_backbone_is_fixed_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    first = build_backbone("none")
    assert torch.equal(torch.rand(4), expected)
    torch.manual_seed(999)
    second = build_backbone("none")
    assert backbone_fingerprint(first) == backbone_fingerprint(second)
    assert not first.training and not any(p.requires_grad for p in first.parameters())


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_backbone_loads_local_weight_files(tmp_path, other_resnet_state, suffix):
    path = tmp_path / f"resnet50{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in other_resnet_state.items()}, str(path))
    else:
        torch.save(other_resnet_state, path)
    backbone = build_backbone(str(path))
    assert torch.equal(backbone.conv1.weight, other_resnet_state["conv1.weight"])
    assert torch.equal(backbone.layer4[2].bn3.running_var, other_resnet_state["layer4.2.bn3.running_var"])
    assert backbone_fingerprint(backbone) != backbone_fingerprint(build_backbone("none"))
    assert not any(p.requires_grad for p in backbone.parameters())


def test_backbone_weight_file_errors_name_the_problem(tmp_path, other_resnet_state):
    missing = tmp_path / "absent.safetensors"
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        build_backbone(str(missing))
    wrong_keys = tmp_path / "wrong.safetensors"
    save_file({"conv1.weight": other_resnet_state["conv1.weight"], "extra": torch.zeros(1)}, str(wrong_keys))
    with pytest.raises(ValueError, match=r"missing keys.*unexpected keys \(e\.g\. \['extra'\]"):
        build_backbone(str(wrong_keys))
    wrong_suffix = tmp_path / "weights.bin"
    wrong_suffix.write_bytes(b"0")
    with pytest.raises(ValueError, match=r"\.safetensors or \.pth"):
        build_backbone(str(wrong_suffix))


def test_offline_imagenet_failure_says_how_to_pass_a_local_file(monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(ResNet50_Weights, "get_state_dict", offline)
    with pytest.raises(ValueError, match="pass its local path as encoder_weights"):
        build_backbone("imagenet")


def test_imagenet_weights_come_from_torchvision(monkeypatch, other_resnet_state):
    monkeypatch.setattr(ResNet50_Weights, "get_state_dict", lambda *args, **kwargs: other_resnet_state)
    backbone = build_backbone("imagenet")
    assert torch.equal(backbone.conv1.weight, other_resnet_state["conv1.weight"])
