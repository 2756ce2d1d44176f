"""Check an ONNX export against the eager model it came from: same captions, how far features and log-probs drift."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modeling import DecodingOptions
from modeling.beam_search import project_for_decoding
from trainer.inference.onnx_search import OnnxCaptioner
from trainer.inference.pipeline import CaptionPipeline, load_for_inference


def _finite_max_diff(a: np.ndarray, b: np.ndarray) -> float:
    both = np.isfinite(a) & np.isfinite(b)
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return float("inf")
    return float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0


def verify_export(checkpoint: Path, out: Path, images: list[Path], options: DecodingOptions, suppress_unk: bool = False,
                  image_size: int | None = None) -> dict:
    """Caption ``images`` with ``out``'s graphs (onnxruntime, numpy search) and with the eager checkpoint (its
    backbone's weights, fine-tuned or frozen, are in both: ``encoder`` says which), both with ``options``
    (``suppress_unk``: plus the vocabulary's <unk>); the log-probability difference is the largest over every step of
    the eager best captions, fed to both decoders."""
    model, vocab, size = load_for_inference(checkpoint, image_size)
    pipe = CaptionPipeline(model.float(), vocab, size)
    options = pipe.options(options, suppress_unk)
    loaded = [pipe.load(path) for path in images]
    failed = [result for result in loaded if result.error is not None]
    if failed:
        raise ValueError(f"--verify {failed[0].source}: {failed[0].error}")
    pixels = torch.stack([pipe.transform(result.image) for result in loaded])
    eager = model.generate(pixels, options)
    eager_captions = [vocab.decode(tokens) for tokens in eager.tokens.tolist()]
    onnx = OnnxCaptioner(out)
    onnx_captions = [onnx.decode(tokens) for tokens, _ in onnx.caption(pixels.numpy(), options)]
    best = eager.tokens[::options.n_best]

    with torch.no_grad():
        features = model.encode(pixels)
        projected = project_for_decoding(model.decoder, features)
        state = model.decoder.init_state(features)
    onnx_features, onnx_projected, hidden, cell = onnx.encode(pixels.numpy())
    feature_diff = float(np.abs(onnx_features - features.numpy()).max())
    words = torch.full((len(images),), vocab.bos_id, dtype=torch.long)
    log_prob_diff = 0.0
    for t in range(best.shape[1]):
        with torch.no_grad():
            logits, state, _ = model.decoder.step(words, state, features, projected)
        eager_log_probs = torch.log_softmax(logits.float(), dim=-1)
        eager_log_probs[:, [vocab.bos_id, vocab.pad_id]] = float("-inf")
        onnx_log_probs, hidden, cell, _ = onnx.log_probs(words.numpy(), hidden, cell, onnx_features,
                                                         onnx_projected)
        log_prob_diff = max(log_prob_diff, _finite_max_diff(onnx_log_probs, eager_log_probs.numpy()))
        words = best[:, t]
    return {"captions_identical": onnx_captions == eager_captions, "encoder": pipe.encoder,
            "max_feature_diff": feature_diff, "max_log_prob_diff": log_prob_diff, "images": [str(path) for path in images],
            "onnx_captions": onnx_captions, "eager_captions": eager_captions}
