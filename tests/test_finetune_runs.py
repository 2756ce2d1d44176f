"""The fine-tuning recipe as real `trainer/train.py` runs on 32 px images: stage 1 on the whole-backbone feature cache,
stage 2 (`train.init_from`, `model.finetune_from=layer4`) on a cache through layer3, exact resume on 1 and 2
processes, the trained layer4 in the checkpoint and in what loads it, and every frozen-cache pairing refused."""
import json
import subprocess
import sys

import pytest
import torch
from distributed_runs import PYTHON, REPO, make_dataset, run, train
from safetensors import safe_open
from safetensors.torch import load_file

from data_pipelines.features import extract_features
from modeling import Captioner
from modeling.encoder import build_backbone
from trainer.checkpointing.checkpoint import step_checkpoint_dir
from trainer.inference.pipeline import CaptionPipeline

pytestmark = pytest.mark.slow
STAGE2 = ["model.finetune_from=layer4", "optim.encoder_lr_factor=0.5", "train.global_batch_size=8",
          "train.micro_batch_size=4", "train.max_steps=4", "checkpoint.every_steps=2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The tiny dataset, its whole-backbone cache (layer4) and its cache through layer3."""
    root = tmp_path_factory.mktemp("data")
    dataset = make_dataset(root)
    for through in ("layer3", "layer4"):
        extract_features(dataset, root / through, "none", 32, through=through, show_progress=False)
    return dataset, root / "layer3", root / "layer4"


@pytest.fixture(scope="module")
def stage1(data, tmp_path_factory):
    dataset, _, layer4 = data
    output_dir = tmp_path_factory.mktemp("stage1")
    train(dataset, output_dir, "train.max_steps=2", "train.global_batch_size=8", f"data.features={layer4}")
    return output_dir / "best"


def stage2(data, stage1, output_dir, *overrides, processes=1, resume=None, check=True):
    dataset, layer3, _ = data
    return train(dataset, output_dir, *STAGE2, f"train.init_from={stage1}", f"data.features={layer3}", *overrides,
                 processes=processes, resume=resume, check=check)


@pytest.fixture(scope="module")
def straight(data, stage1, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("stage2")
    stage2(data, stage1, output_dir)
    return output_dir


@pytest.mark.parametrize("processes", [1, 2])
def test_stage2_resumes_to_the_bytes_of_a_straight_run(data, stage1, straight, tmp_path, processes):
    reference = straight if processes == 1 else tmp_path / "straight"
    if processes == 2:
        stage2(data, stage1, reference, processes=2)
    resumed = tmp_path / "resumed"
    stage2(data, stage1, resumed, "train.stop_at_step=2", processes=processes)
    stage2(data, stage1, resumed, processes=processes, resume="latest")
    for name in ("model.safetensors", "optimizer.safetensors"):
        assert (step_checkpoint_dir(reference, 4) / name).read_bytes() == \
               (step_checkpoint_dir(resumed, 4) / name).read_bytes(), name


def test_the_checkpoint_carries_the_trained_layer4_only(straight, stage1):
    checkpoint = step_checkpoint_dir(straight, 4)
    saved, start = load_file(str(checkpoint / "model.safetensors")), load_file(str(stage1 / "model.safetensors"))
    model = Captioner.from_pretrained(checkpoint)
    trained = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert {name for name in trained if name.startswith("encoder.backbone.")} == \
        {name for name in saved if name.startswith("encoder.backbone.layer4.") and name in dict(model.named_parameters())}
    for name in start:
        if name in trained:
            assert not torch.equal(saved[name], start[name]), name  # stage 2 changed it
        else:
            assert torch.equal(saved[name], start[name]), name  # frozen stages and every BatchNorm statistic
    with safe_open(str(checkpoint / "optimizer.safetensors"), framework="pt") as handle:
        groups = json.loads(handle.metadata()["optimizer"])["param_groups"]
    assert [group["initial_lr"] for group in groups] == pytest.approx([4e-4, 2e-4])
    assert len(groups[1]["params"]) == len(model.backbone_parameters())


def test_inference_loads_the_trained_encoder_and_says_so(data, straight, tmp_path):
    dataset, layer3, layer4 = data
    best, tuned = straight / "best", step_checkpoint_dir(straight, 4)
    pipe = CaptionPipeline.from_checkpoint(tuned)
    saved = load_file(str(tuned / "model.safetensors"))
    for name, tensor in pipe.model.encoder.backbone.state_dict().items():
        assert torch.equal(tensor, saved[f"encoder.backbone.{name}"]), name
    assert not torch.equal(pipe.model.encoder.backbone.layer4[0].conv1.weight,
                           build_backbone("none").layer4[0].conv1.weight)  # the trained layer4, not the starting one
    assert pipe.encoder.startswith("ResNet-50 fine-tuned from layer4")
    assert "Show, Attend and Tell: ResNet-50 fine-tuned from layer4" in (best / "README.md").read_text()
    evaluate = [PYTHON, "-m", "trainer.evaluate_checkpoint", "--checkpoint", str(best), "--data", str(dataset),
                "--num-workers", "0", "--out", str(tmp_path / "results.json")]
    refused = run([*evaluate, "--features", str(layer4)], check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"{layer4}" in refused.stderr and f"checkpoint {best}" in refused.stderr
    assert "fine-tuned from layer4" in refused.stderr
    accepted = run([*evaluate, "--features", str(layer3)])
    assert "encoder: ResNet-50 fine-tuned from layer4" in accepted.stdout
    image = next((dataset.parent / "syn").rglob("*.jpg"))
    captioned = run([PYTHON, "-m", "trainer.caption", "--checkpoint", str(tuned), str(image), "--json"])
    assert f"{tuned}: ResNet-50 fine-tuned from layer4" in captioned.stderr
    assert json.loads(captioned.stdout.splitlines()[-1])["captions"][0]["text"] == pipe([image])[0].captions[0].text


def test_a_frozen_cache_of_other_weights_is_refused_naming_checkpoint_and_cache(data, straight, tmp_path):
    dataset, layer3, layer4 = data
    tuned = step_checkpoint_dir(straight, 4)  # best/ may hold the starting weights (validated first)
    # stage 3 keeps the fine-tuned backbone frozen: the whole-backbone cache holds the old layer4's features
    refused = train(dataset, tmp_path / "stage3", "train.max_steps=1", f"train.init_from={tuned}",
                    f"data.features={layer4}", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"train.init_from {tuned}" in refused.stderr and str(layer4) in refused.stderr
    assert "backbone_fingerprint" in refused.stderr
    # while stage 2 itself cannot read the whole-backbone cache at all
    refused = train(dataset, tmp_path / "stage2", *STAGE2, f"train.init_from={tuned}", f"data.features={layer4}",
                    check=False)
    assert refused.returncode != 0 and "whose encoder is fine-tuned from layer4" in refused.stderr
    # the cache through layer3 feeds the frozen fine-tuned backbone too
    train(dataset, tmp_path / "stage3_ok", "train.max_steps=1", f"train.init_from={tuned}", f"data.features={layer3}")


def test_the_export_verifies_with_the_trained_encoder(data, straight, tmp_path):
    dataset = data[0]
    images = sorted((dataset.parent / "syn").rglob("*.jpg"))[:2]
    completed = subprocess.run([sys.executable, "-m", "trainer.export", "--checkpoint", str(step_checkpoint_dir(straight, 4)),
                                "--out", str(tmp_path / "onnx"), "--verify", *map(str, images), "--max-len", "8"],
                               cwd=REPO, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["captions_identical"] and report["encoder"].startswith("ResNet-50 fine-tuned from layer4")
    assert report["max_feature_diff"] < 1e-3
