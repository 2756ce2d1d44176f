"""Caption with the ONNX graphs ``trainer.export`` writes: onnxruntime + numpy only (no torch at run time).

    from trainer.inference.onnx_search import OnnxCaptioner
    captioner = OnnxCaptioner("exported/")
    captioner.caption(pixels, beam_size=3, max_len=20)  # pixels: (B, 3, S, S) float32, ImageNet-normalised

``encoder.onnx``: pixels -> region features, their attention projection, initial LSTM state. ``decoder_step.onnx``:
previous words + state -> next-word log-probabilities, new state, attention weights. The controls are
``modeling.DecodingOptions`` (plain Python, checked by its own rules); the search over a batch of images is
``trainer.inference.numpy_search``, the same as ``modeling.beam_search``. A control it does not do is refused with a
ValueError naming it.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from modeling.decoding_options import DecodingOptions
from trainer.inference.numpy_search import beam_search, greedy_search

ENCODER_FILE, STEP_FILE, EXPORT_CONFIG_FILE = "encoder.onnx", "decoder_step.onnx", "export.json"
EXPORT_FILES = (ENCODER_FILE, ENCODER_FILE + ".data", STEP_FILE, STEP_FILE + ".data", EXPORT_CONFIG_FILE, "vocab.json",
                "config.json", "README.md")  # everything an export folder holds (.data: the weights beside each graph)

# What the numpy search does; any other control set away from its default is refused. sample: the eager draws come
# from torch's generators, which numpy cannot repeat. seed only matters when sampling.
HONOURED = ("beam_size", "max_len", "length_penalty", "min_len", "no_repeat_ngram_size", "suppress_ids", "n_best",
            "seed")


def checked_options(options: DecodingOptions | None, changes: dict) -> DecodingOptions:
    """``options`` (default: plain beam search) with ``changes``; ValueError naming a control that does not exist, is
    out of range, or is one the ONNX captioner does not do."""
    if options is not None and not isinstance(options, DecodingOptions):
        raise TypeError(f"options must be DecodingOptions, got {type(options).__name__}; give controls by name: "
                        "caption(pixels, beam_size=3)")
    names = [spec.name for spec in dataclasses.fields(DecodingOptions)]
    unknown = sorted(set(changes) - set(names))
    if unknown:
        raise ValueError(f"unknown decoding control {unknown[0]!r}; the controls are {', '.join(names)}")
    try:
        options = (options or DecodingOptions()).replace(**changes)
    except ValueError as error:
        raise ValueError(f"decoding control {error}") from None
    refused = [name for name in options.changed() if name not in HONOURED]
    if refused:
        raise ValueError(f"decoding control {refused[0]!r} is not supported by the ONNX captioner (it does "
                         f"{', '.join(HONOURED)}); caption with trainer.caption for it")
    return options


class OnnxCaptioner:
    """The two ONNX graphs of an export folder, its vocabulary and special ids."""

    def __init__(self, directory: str | Path):
        import onnxruntime

        directory = Path(directory)
        settings = json.loads((directory / EXPORT_CONFIG_FILE).read_text(encoding="utf-8"))
        self.bos_id, self.eos_id, self.pad_id = settings["bos_id"], settings["eos_id"], settings["pad_id"]
        self.image_size = settings["image_size"]
        vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        self.words = [*vocab["specials"], *vocab["words"]]
        options = onnxruntime.SessionOptions()
        self.encoder = onnxruntime.InferenceSession(str(directory / ENCODER_FILE), options,
                                                    providers=["CPUExecutionProvider"])
        self.step = onnxruntime.InferenceSession(str(directory / STEP_FILE), options,
                                                 providers=["CPUExecutionProvider"])

    def encode(self, pixels: np.ndarray) -> tuple[np.ndarray, ...]:
        """(features, projected, hidden, cell) of (B, 3, S, S) float32 pixels."""
        return tuple(self.encoder.run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)}))

    def log_probs(self, words, hidden, cell, features, projected) -> tuple[np.ndarray, ...]:
        """Next-word log-probabilities (<bos>, <pad> at -inf), new hidden and cell, attention weights."""
        log_probs, hidden, cell, alpha = self.step.run(None, {
            "words": words.astype(np.int64), "hidden": hidden, "cell": cell, "features": features,
            "projected": projected})
        log_probs[:, [self.bos_id, self.pad_id]] = -np.inf
        return log_probs, hidden, cell, alpha

    def decode(self, tokens: list[int]) -> str:
        words = []
        for token in tokens:
            if token == self.eos_id:
                break
            if token not in (self.bos_id, self.pad_id):
                words.append(self.words[token])
        return " ".join(words)

    def caption(self, pixels: np.ndarray, options: DecodingOptions | None = None,
                **changes) -> list[tuple[list[int], float]]:
        """(tokens ending in <eos> when the caption ended, score) of each image of the batch, ``n_best`` rows per image
        (image-major, best first); controls as in ``Captioner.generate``: ``options`` and/or keyword changes
        (beam_size 1 is greedy search). Controls it does not do (``sample``) are refused with a ValueError naming
        them."""
        options = checked_options(options, changes)
        encoded = self.encode(pixels)
        search = greedy_search if options.beam_size == 1 else beam_search
        return search(lambda *state: self.log_probs(*state)[:3], encoded, options, self.bos_id, self.eos_id,
                      self.pad_id)
