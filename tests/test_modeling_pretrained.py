"""save_pretrained / from_pretrained, the config, and which parameters train."""
import json

import pytest
import torch
from torchvision.models import ResNet50_Weights, resnet50

from modeling import Captioner, CaptionerConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=25, encoder_weights="none", attention_gate="vector"))
    with torch.no_grad():  # make the saved weights differ from a fresh model's
        for parameter in model.trainable_parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    return model.eval()


def test_from_pretrained_reproduces_outputs_without_unpickling(model, tmp_path, monkeypatch):
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]

    def no_unpickling(*args, **kwargs):
        raise AssertionError("from_pretrained must not call torch.load")

    monkeypatch.setattr(torch, "load", no_unpickling)
    loaded = Captioner.from_pretrained(tmp_path).eval()
    assert loaded.config == model.config
    images, captions = torch.randn(2, 3, 32, 32), torch.randint(3, 25, (2, 2, 6))
    torch.testing.assert_close(loaded(images, captions).logits, model(images, captions).logits, rtol=0, atol=0)
    expected, actual = model.generate(images, beam_size=3, max_len=6), loaded.generate(images, beam_size=3, max_len=6)
    assert torch.equal(actual.tokens, expected.tokens)
    torch.testing.assert_close(actual.scores, expected.scores, rtol=0, atol=0)


def test_from_pretrained_never_downloads_imagenet_weights(tmp_path, monkeypatch):
    torch.manual_seed(3)
    imagenet_like = resnet50(weights=None).state_dict()
    monkeypatch.setattr(ResNet50_Weights, "get_state_dict", lambda *args, **kwargs: imagenet_like)
    Captioner(CaptionerConfig(vocab_size=10, encoder_weights="imagenet")).save_pretrained(tmp_path)

    def no_download(*args, **kwargs):
        raise AssertionError("from_pretrained must not download")

    monkeypatch.setattr(ResNet50_Weights, "get_state_dict", no_download)
    loaded = Captioner.from_pretrained(tmp_path)
    assert loaded.config.encoder_weights == "imagenet"
    assert torch.equal(loaded.encoder.backbone.conv1.weight, imagenet_like["conv1.weight"])
    assert not loaded.encoder.backbone.training and not loaded.encoder.backbone.conv1.weight.requires_grad


def test_from_pretrained_errors_name_the_file(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        Captioner.from_pretrained(tmp_path)
    CaptionerConfig(vocab_size=25, encoder_weights="none").save(tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        Captioner.from_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    CaptionerConfig(vocab_size=30, encoder_weights="none").save(tmp_path / "config.json")
    with pytest.raises(ValueError, match="does not match the model described by"):
        Captioner.from_pretrained(tmp_path)


def test_config_round_trips_through_json_and_rejects_bad_values(tmp_path):
    config = CaptionerConfig(vocab_size=99, encoder_weights="none", hidden_dim=128, scheduled_sampling="argmax")
    config.save(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["hidden_dim"] == 128
    assert CaptionerConfig.load(tmp_path / "config.json") == config
    assert CaptionerConfig(vocab_size=5).encoder_weights == "imagenet"
    with pytest.raises(ValueError, match=r"unknown CaptionerConfig keys \['hiden_dim'\]; valid keys are"):
        CaptionerConfig.from_dict({"vocab_size": 5, "hiden_dim": 3})
    with pytest.raises(ValueError, match="attention_gate must be one of"):
        CaptionerConfig(vocab_size=5, attention_gate="sigmoid")
    with pytest.raises(ValueError, match="scheduled_sampling must be one of"):
        CaptionerConfig(vocab_size=5, scheduled_sampling="greedy")
    with pytest.raises(ValueError, match=r"eos_id must be an int in \[0, vocab_size=2\)"):
        CaptionerConfig(vocab_size=2)


def test_trainable_parameters_are_everything_but_the_backbone(model):
    trainable = {id(p) for p in model.trainable_parameters()}
    backbone = {id(p) for p in model.encoder.backbone.parameters()}
    everything = {id(p) for p in model.parameters()}
    assert trainable == everything - backbone and backbone and trainable
    assert all(p.requires_grad for p in model.trainable_parameters())
    assert {id(p) for p in model.encoder.project.parameters()} <= trainable
