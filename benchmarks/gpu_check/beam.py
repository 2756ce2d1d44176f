"""Batched beam search images/s (beam 5) on backbone features, in fp32 and in bf16 (``model.to(torch.bfloat16)``).

Random weights rarely choose EOS, so every beam runs to ``max_len``: the slowest case a trained model meets."""
from __future__ import annotations

import time

import torch

from benchmarks.gpu_check.device import peak_memory_mib, reset_peak_memory, synchronize
from benchmarks.gpu_check.training import SMOKE_SHAPES, TrainShapes
from modeling import Captioner

BEAM_SIZE, MAX_LEN = 5, 20


def run(device: torch.device, deadline: float, smoke: bool) -> list[dict]:
    shapes = SMOKE_SHAPES if smoke else TrainShapes()
    images = 4 if smoke else 1000
    torch.manual_seed(0)
    model = Captioner(shapes.model_config()).eval().to(device)
    features = torch.randn(images, shapes.backbone_channels, 7, 7, generator=torch.Generator().manual_seed(0))
    features = features.to(device)
    rows = []
    for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        row = {"dtype": dtype_name, "beam_size": BEAM_SIZE, "max_len": MAX_LEN, "images": images}
        if time.monotonic() > deadline:
            rows.append({**row, "skipped": "time budget spent"})
            continue
        model.to(dtype)
        model.generate(features[: max(1, images // 10)], beam_size=BEAM_SIZE, max_len=MAX_LEN)  # warm-up
        reset_peak_memory(device)
        synchronize(device)
        started = time.perf_counter()
        generation = model.generate(features, beam_size=BEAM_SIZE, max_len=MAX_LEN)
        synchronize(device)
        seconds = time.perf_counter() - started
        rows.append({**row, "images_per_s": round(images / seconds, 1), "seconds": round(seconds, 3),
                     "mean_tokens": round(float((generation.tokens != model.config.pad_id).sum(1).float().mean()), 2),
                     "peak_memory_mib": peak_memory_mib(device)})
    return rows
