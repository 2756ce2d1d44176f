"""Beam search and feature extraction on a CUDA device agree with the CPU. Unverified here: no GPU on this machine."""
import pytest
import torch
from distributed_runs import make_dataset
from safetensors.torch import load

from data_pipelines.features import extract_features
from data_pipelines.stream_samples import BrokenSampleCounter, read_tar_samples
from modeling import Captioner, CaptionerConfig

pytestmark = pytest.mark.gpu


def peaked_model() -> Captioner:
    """Small random model with large decoder weights, so beam choices are decisive (no near-ties between devices)."""
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=12, encoder_weights="none", hidden_dim=64, attention_dim=32))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.decoder.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return model.eval()


def test_beam_search_on_cuda_matches_cpu():
    model = peaked_model()
    features = torch.randn(8, 2048, 2, 2, generator=torch.Generator().manual_seed(3))
    on_cpu = model.generate(features, beam_size=3, max_len=12)
    on_gpu = model.to("cuda").generate(features.to("cuda", non_blocking=True), beam_size=3, max_len=12)
    assert on_gpu.tokens.device.type == "cuda"
    assert torch.equal(on_gpu.tokens.cpu(), on_cpu.tokens)
    torch.testing.assert_close(on_gpu.scores.cpu(), on_cpu.scores, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(on_gpu.alphas.cpu(), on_cpu.alphas, atol=1e-4, rtol=1e-4)


def features_by_key(cache, shard: str) -> dict:
    samples = read_tar_samples([str(cache / shard)], BrokenSampleCounter())
    return {sample["__key__"]: load(sample["safetensors"])["features"].float() for sample in samples}


def test_feature_extraction_on_cuda_matches_cpu(tmp_path):
    dataset = make_dataset(tmp_path / "data")
    cpu_cache, gpu_cache = tmp_path / "cpu", tmp_path / "gpu"
    extract_features(dataset, cpu_cache, weights="none", image_size=32, splits=["val"], device="cpu",
                     show_progress=False)
    manifest = extract_features(dataset, gpu_cache, weights="none", image_size=32, splits=["val"], device="cuda",
                                show_progress=False)
    shard = manifest["splits"]["val"]["shards"][0]
    on_cpu, on_gpu = features_by_key(cpu_cache, shard), features_by_key(gpu_cache, shard)
    assert on_cpu.keys() == on_gpu.keys() and len(on_cpu) == 5
    for key, tensor in on_cpu.items():  # stored as fp16; cuDNN convolutions differ from the CPU's in the last bits
        torch.testing.assert_close(on_gpu[key], tensor, atol=2e-2, rtol=1e-2, msg=key)
