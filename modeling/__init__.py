"""Show, Attend and Tell model: ResNet-50 encoder (frozen or fine-tuned), additive attention, LSTMCell decoder.

The names are loaded on first use, so ``modeling.decoding_options`` and ``modeling.config`` import without torch (the
ONNX captioner checks its controls with ``DecodingOptions`` and runs on numpy).
"""
import importlib

_HOMES = {"Captioner": "captioner", "CaptionerOutput": "captioner", "CaptionerConfig": "config",
          "DecodingOptions": "decoding_options", "Generation": "beam_search"}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
