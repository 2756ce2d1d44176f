"""Decoder training throughput on cached-feature shapes: captions/s, peak memory and MFU per (dtype, mode, micro-batch).

A step is what trainer.training.loop runs on a feature cache: Captioner forward on backbone features (B, C, 7, 7) with K
captions per image, masked cross-entropy + the doubly stochastic attention term (lambda 0.01), backward, Adam
(AdamW, weight decay 0; fused on CUDA), under autocast for bf16/fp16 (fp16 with a GradScaler).

Model FLOPs (MFU numerator), a multiply-add counted as 2 FLOPs, training = 3x forward (backward ~2x forward); the
frozen backbone is not counted (its features are cached). R regions, C backbone channels, F feature, E embedding,
A attention, H hidden, V vocabulary sizes, g the attention gate's width (1 scalar, F vector, 0 none), L_i the decoding
steps of caption i (its words + EOS), K captions per image:

    per image:   2 R C F                                   (1x1 conv; shared by the image's K captions)
    per caption: 2 R F A + 4 F H                           (W_f f for every region; h0 and c0)
    per step:    2 E 4H + 2 (F + H) 4H + 2 H A + 2 R A + 2 R F + 2 H g + 2 H V
                 (word's gate term, LSTM gates, W_h h, scores, context, gate, output layer)
    FLOPs/step of training = 3 [B 2RCF + N (2RFA + 4FH) + sum_i L_i (per step)]

MFU = FLOPs per second / the device's peak for the dtype (``device.PEAK_TFLOPS``).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from benchmarks.gpu_check.device import peak_memory_mib, reset_peak_memory, synchronize
from modeling import Captioner, CaptionerConfig
from trainer.training.losses import caption_loss
from trainer.training.speed_options import compile_recurrent_step

# bf16 first: its best row is the MFU goal, and rows past the time budget are skipped (compilation takes most of it)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
ATTENTION_LAMBDA = 0.01


@dataclass
class TrainShapes:
    """COCO shapes by default: vocab 10k, 49 regions of 2048 channels (ResNet-50 at 224 px), hidden 512, 5 captions
    per image of 10.5 +- 2.4 words (Karpathy COCO train, 6..18 kept)."""

    vocab_size: int = 10_000
    backbone_channels: int = 2048
    hidden_dim: int = 512
    feature_dim: int = 256
    embed_dim: int = 256
    attention_dim: int = 256
    captions_per_image: int = 5
    mean_words: float = 10.5
    std_words: float = 2.4
    min_words: int = 6
    max_words: int = 18

    def model_config(self) -> CaptionerConfig:
        return CaptionerConfig(vocab_size=self.vocab_size, encoder_weights="none", backbone_channels=self.backbone_channels,
                               feature_dim=self.feature_dim, embed_dim=self.embed_dim, attention_dim=self.attention_dim,
                               hidden_dim=self.hidden_dim, dropout=0.5)


SMOKE_SHAPES = TrainShapes(vocab_size=200, backbone_channels=64, hidden_dim=32, feature_dim=16, embed_dim=16,
                           attention_dim=16, captions_per_image=2, mean_words=5.0, std_words=1.5, min_words=2,
                           max_words=8)


def coco_like_batch(shapes: TrainShapes, images: int, config: CaptionerConfig, device: torch.device,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random backbone features (images, C, 7, 7) and captions (images, K, max_words + 2): BOS, words, EOS, pad."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(images, shapes.backbone_channels, 7, 7, generator=generator)
    words = (torch.randn(images, shapes.captions_per_image, generator=generator) * shapes.std_words + shapes.mean_words)
    words = words.round().clamp(shapes.min_words, shapes.max_words).long()
    length = shapes.max_words + 2
    captions = torch.randint(4, shapes.vocab_size, (images, shapes.captions_per_image, length), generator=generator)
    positions = torch.arange(length)
    captions[..., 0] = config.bos_id
    captions = torch.where(positions == words.unsqueeze(-1) + 1, config.eos_id, captions)
    captions = torch.where(positions > words.unsqueeze(-1) + 1, config.pad_id, captions)
    return features.to(device), captions.to(device)


def training_flops(config: CaptionerConfig, images: int, captions: torch.Tensor) -> float:
    """Model FLOPs of one training step on ``captions`` (images, K, T): the module docstring's formula."""
    R, C, F, E = config.grid_size ** 2, config.backbone_channels, config.feature_dim, config.embed_dim
    A, H, V = config.attention_dim, config.hidden_dim, config.vocab_size
    gate = {"scalar": 1, "vector": F, "none": 0}[config.attention_gate]
    steps = int((captions[..., 1:] != config.pad_id).sum())  # every token after BOS is predicted by one step
    per_step = 2 * E * 4 * H + 2 * (F + H) * 4 * H + 2 * H * A + 2 * R * A + 2 * R * F + 2 * H * gate + 2 * H * V
    rows = captions.shape[0] * captions.shape[1]
    return 3.0 * (images * 2 * R * C * F + rows * (2 * R * F * A + 4 * F * H) + steps * per_step)


def _step(model, optimizer, scaler, features, captions, dtype: torch.dtype, pad_id: int) -> None:
    with torch.autocast(features.device.type, dtype=dtype, enabled=dtype != torch.float32):
        output = model(features, captions)
        loss = caption_loss(output.logits, output.alphas, captions.flatten(0, 1), pad_id, ATTENTION_LAMBDA).total
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def measure_row(model, shapes: TrainShapes, dtype_name: str, images: int, device: torch.device, peaks: dict,
                steps: int, max_seconds: float) -> dict:
    """Warm up (2 steps: compilation, allocator), then time up to ``steps`` steps or ``max_seconds``."""
    config, dtype = model.config, DTYPES[dtype_name]
    features, captions = coco_like_batch(shapes, images, config, device)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=4e-4, weight_decay=0.0,
                                  fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    reset_peak_memory(device)
    warm_started = time.perf_counter()
    for _ in range(2):
        _step(model, optimizer, scaler, features, captions, dtype, config.pad_id)
    synchronize(device)
    warmup_s = time.perf_counter() - warm_started
    started, timed = time.perf_counter(), 0
    # the forward reads the caption lengths back (.tolist()), so the host never runs far ahead of the device
    while timed < steps and (timed == 0 or time.perf_counter() - started < max_seconds):
        _step(model, optimizer, scaler, features, captions, dtype, config.pad_id)
        timed += 1
    synchronize(device)
    step_s = (time.perf_counter() - started) / timed
    flops_per_s = training_flops(config, images, captions) / step_s
    peak = peaks.get(dtype_name)
    return {"captions_per_s": round(captions.shape[0] * captions.shape[1] / step_s, 1),
            "images_per_s": round(images / step_s, 1), "step_ms": round(1000 * step_s, 2), "timed_steps": timed,
            "warmup_s": round(warmup_s, 2), "model_tflops_per_s": round(flops_per_s / 1e12, 4),
            "mfu": None if not peak else flops_per_s / (peak * 1e12), "peak_memory_mib": peak_memory_mib(device)}


def run(device: torch.device, peaks: dict, deadline: float, smoke: bool) -> list[dict]:
    """Rows for every dtype x (eager, compile) x micro-batch; rows past ``deadline`` are recorded as skipped. The
    compiled model is compiled once per dtype (autocast is part of the graph), for every micro-batch (dynamic)."""
    shapes = SMOKE_SHAPES if smoke else TrainShapes()
    micro_batches = (2,) if smoke else (32, 128, 512)
    backend = "eager" if smoke else "inductor"  # the CPU smoke run goes through dynamo, without compiling kernels
    torch.manual_seed(0)
    eager = Captioner(shapes.model_config()).to(device).train()
    compiled = copy.deepcopy(eager)
    compile_recurrent_step(compiled.decoder, backend=backend)
    rows = []
    for dtype_name in DTYPES:
        for mode, model in (("eager", eager), ("compile", compiled)):
            for images in micro_batches:
                row = {"dtype": dtype_name, "mode": mode, "micro_batch_images": images,
                       "captions_per_image": shapes.captions_per_image}
                remaining = deadline - time.monotonic()
                if remaining < 1:
                    rows.append({**row, "skipped": "time budget spent"})
                    continue
                if dtype_name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
                    rows.append({**row, "skipped": "no bf16 on this GPU"})
                    continue
                try:
                    row.update(measure_row(model, shapes, dtype_name, images, device, peaks, steps=20 if not smoke else 2,
                                           max_seconds=min(3.0, remaining / 2)))
                except torch.cuda.OutOfMemoryError as error:
                    row["error"] = f"out of memory: {str(error).splitlines()[0]}"
                    torch.cuda.empty_cache()
                rows.append(row)
    return rows
