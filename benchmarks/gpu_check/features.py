"""Feature extraction images/s: ResNet-50 from JPEG shards through the eval loader's worker processes, in fp32
(NCHW, channels_last) and bf16 autocast (channels_last), with the share of the wall time spent waiting for the loader.

Per variant: ``images_per_s`` end to end (decode + resize in the workers, copy, backbone, features back to the host in
fp16 as data_pipelines.features stores them), ``loader_share`` (time blocked on the next batch / wall time), and
``backbone_images_per_s`` (the backbone alone on one batch already on the device: what the GPU could do)."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.bench_loader import write_bench_dataset
from benchmarks.gpu_check.device import synchronize
from data_pipelines.stream import build_eval_loader
from modeling.encoder import build_backbone

VARIANTS = (("fp32", False), ("fp32", True), ("bf16", True))  # (dtype, channels_last)


def _forward(backbone, pixels: torch.Tensor, dtype_name: str, channels_last: bool) -> torch.Tensor:
    if channels_last:
        pixels = pixels.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(pixels.device.type, dtype=torch.bfloat16, enabled=dtype_name == "bf16"):
        return backbone(pixels).to(torch.float16)


def run(device: torch.device, deadline: float, smoke: bool) -> list[dict]:
    images, image_size, batch_size = (4, 32, 2) if smoke else (2048, 224, 128)
    workers = 1 if smoke else max(1, min(12, (os.cpu_count() or 2) - 2))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_bench_dataset(Path(tmp) / "jpeg", images, shard_size=max(1, images // (2 * workers)))
        backbone = build_backbone("none").to(device)
        for dtype_name, channels_last in VARIANTS:
            row = {"dtype": dtype_name, "channels_last": channels_last, "images": images, "image_size": image_size,
                   "batch_size": batch_size, "loader_workers": workers}
            if time.monotonic() > deadline:
                rows.append({**row, "skipped": "time budget spent"})
                continue
            backbone.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            loader = build_eval_loader(data, "train", batch_size=batch_size, num_workers=workers,
                                       image_size=image_size)
            waiting, seen = 0.0, 0
            started = time.perf_counter()
            batches = iter(loader)
            while True:
                asked = time.perf_counter()
                batch = next(batches, None)
                waiting += time.perf_counter() - asked
                if batch is None:
                    break
                pixels = batch["pixels"]
                if device.type == "cuda":
                    pixels = pixels.pin_memory()
                _forward(backbone, pixels.to(device, non_blocking=True), dtype_name, channels_last).cpu()
                seen += pixels.shape[0]
            wall = time.perf_counter() - started
            on_device = pixels.to(device)
            _forward(backbone, on_device, dtype_name, channels_last)  # warm-up at this batch's shape
            synchronize(device)
            forward_started = time.perf_counter()
            _forward(backbone, on_device, dtype_name, channels_last)
            synchronize(device)
            rows.append({**row, "images_per_s": round(seen / wall, 1), "loader_share": round(waiting / wall, 3),
                         "backbone_images_per_s": round(on_device.shape[0] / (time.perf_counter() - forward_started), 1),
                         "seconds": round(wall, 2)})
    return rows
