"""The machine a check runs on, and the peak FLOP/s its MFU figures divide by."""
from __future__ import annotations

import os
import platform
import subprocess

import torch

# Dense (no sparsity) peak TFLOP/s per dtype from the vendors' data sheets: fp32 is the CUDA-core rate (PyTorch's
# default does not use TF32 for fp32 matrix products), bf16/fp16 the tensor-core rate with fp32 accumulation.
# Matched in this order against torch.cuda.get_device_name() (so "A100" is tried before "A10", "L40S" before "L4").
PEAK_TFLOPS = [
    ("H200", {"fp32": 67.0, "bf16": 989.4, "fp16": 989.4}),
    ("H100 PCIe", {"fp32": 51.2, "bf16": 756.0, "fp16": 756.0}),
    ("H100", {"fp32": 66.9, "bf16": 989.4, "fp16": 989.4}),
    ("A100", {"fp32": 19.5, "bf16": 312.0, "fp16": 312.0}),
    ("L40S", {"fp32": 91.6, "bf16": 362.1, "fp16": 362.1}),
    ("L4", {"fp32": 30.3, "bf16": 121.0, "fp16": 121.0}),
    ("A10", {"fp32": 31.2, "bf16": 125.0, "fp16": 125.0}),
    ("RTX 4090", {"fp32": 82.6, "bf16": 165.2, "fp16": 165.2}),
    ("V100", {"fp32": 15.7, "fp16": 125.0}),
    ("T4", {"fp32": 8.1, "fp16": 65.0}),
]
# A CPU has no data-sheet figure here: a nominal cores x 2 GHz x 32 FLOP/cycle (two 8-wide FMA units), any dtype.
CPU_FLOP_PER_CORE_CYCLE, CPU_NOMINAL_HZ = 32, 2.0e9


def parse_peak_overrides(text: str | None) -> dict[str, float]:
    """``"bf16=989,fp32=67"`` -> {"bf16": 989.0, "fp32": 67.0}; a one-line ValueError for anything else."""
    overrides = {}
    for item in filter(None, (text or "").split(",")):
        dtype, sep, value = item.partition("=")
        try:
            if not sep or dtype not in ("fp32", "bf16", "fp16") or float(value) <= 0:
                raise ValueError
            overrides[dtype] = float(value)
        except ValueError:
            raise ValueError(f"--peak-tflops {text!r}: expected DTYPE=TFLOPS[,...] with DTYPE fp32|bf16|fp16 and a "
                             f"positive number, got {item!r}") from None
    return overrides


def table_peaks(gpu_name: str) -> tuple[dict[str, float], str]:
    """The first ``PEAK_TFLOPS`` entry contained in ``gpu_name`` (e.g. "NVIDIA H100 80GB HBM3"), or none."""
    match = next(((key, peaks) for key, peaks in PEAK_TFLOPS if key in gpu_name), None)
    return (dict(match[1]), f"data sheet ({match[0]})") if match else ({}, f"no table entry for {gpu_name}")


def peak_tflops(device: torch.device, overrides: dict[str, float]) -> tuple[dict[str, float], str]:
    """Peak TFLOP/s per dtype for ``device`` (table or nominal CPU figure, then ``overrides``) and where it came from."""
    if device.type == "cuda":
        peaks, source = table_peaks(torch.cuda.get_device_name(device))
    else:
        nominal = (os.cpu_count() or 1) * CPU_NOMINAL_HZ * CPU_FLOP_PER_CORE_CYCLE / 1e12
        peaks, source = {dtype: nominal for dtype in ("fp32", "bf16", "fp16")}, "nominal CPU figure"
    if overrides:
        peaks.update(overrides)
        source += f", overridden: {overrides}"
    return peaks, source


def _driver_version() -> str | None:
    try:
        completed = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                   capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip().splitlines()[0] if completed.returncode == 0 and completed.stdout.strip() else None


def describe_device(device: torch.device, peaks: dict[str, float], peak_source: str) -> dict:
    """What the figures were measured on: GPU model, driver, torch / CUDA / cuDNN versions, peaks used for MFU."""
    info = {"type": device.type, "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "peak_tflops": peaks, "peak_source": peak_source}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update(name=properties.name, memory_gib=round(properties.total_memory / 2**30, 1),
                    capability=f"{properties.major}.{properties.minor}", driver=_driver_version(),
                    cudnn=torch.backends.cudnn.version(), bf16_supported=torch.cuda.is_bf16_supported())
    else:
        info.update(name=platform.processor() or platform.machine())
    return info


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device) -> float | None:
    """Peak GPU memory allocated since the last reset (None on a CPU)."""
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None
