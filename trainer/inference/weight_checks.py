"""Weights from a checkpoint we did not write must be real numbers of a floating type before anything is captioned.

``load_state_dict`` silently converts an int32 tensor into the model's float parameter, and a NaN weight makes every
score NaN, so beam search finishes nothing and the caption is empty (exit status 0). Both are refused here, naming
the file and the tensor.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open

FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


def check_weights(weights_file: Path, model: torch.nn.Module) -> None:
    """ValueError naming ``weights_file`` and the tensor when a stored tensor of a floating parameter or buffer is not
    floating point, or when a loaded one of ``model`` holds NaN or infinity."""
    expected = model.state_dict()
    with safe_open(str(weights_file), framework="pt") as handle:
        for name in handle.keys():
            dtype = handle.get_slice(name).get_dtype()
            if name in expected and expected[name].is_floating_point() and dtype not in FLOAT_DTYPES:
                raise ValueError(f"{weights_file}: tensor {name!r} is {dtype}, expected a floating type "
                                 f"({', '.join(FLOAT_DTYPES)})")
    for name, tensor in expected.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{weights_file}: tensor {name!r} holds NaN or infinite values; the checkpoint is "
                             f"broken (a diverged run?)")
