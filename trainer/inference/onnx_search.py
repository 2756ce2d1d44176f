"""Caption with the ONNX graphs ``trainer.export`` writes: onnxruntime + numpy only (no torch at run time).

    from trainer.inference.onnx_search import OnnxCaptioner
    captioner = OnnxCaptioner("exported/")
    captioner.caption(pixels, beam_size=3, max_len=20)  # pixels: (B, 3, S, S) float32, ImageNet-normalised

``encoder.onnx``: pixels -> region features, their attention projection, initial LSTM state. ``decoder_step.onnx``:
previous words + state -> next-word log-probabilities, new state, attention weights. The search is the same as
``modeling.beam_search`` (finished captions ranked by log p / length**length_penalty, an <eos> counts when it ranks
among the beam_size best candidates, a search stops once its best finished caption beats every live beam's bound).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

ENCODER_FILE, STEP_FILE, EXPORT_CONFIG_FILE = "encoder.onnx", "decoder_step.onnx", "export.json"
EXPORT_FILES = (ENCODER_FILE, ENCODER_FILE + ".data", STEP_FILE, STEP_FILE + ".data", EXPORT_CONFIG_FILE, "vocab.json",
                "config.json", "README.md")  # everything an export folder holds (.data: the weights beside each graph)

CONTROLS = ("beam_size", "max_len", "length_penalty")


def check_controls(beam_size, max_len, length_penalty, others: dict) -> None:
    """ValueError naming the control when it is one this search does not do (``min_len``, ``n_best``, ``sample``,
    ...: the eager ``trainer.caption`` does them) or out of range."""
    if others:
        name = sorted(others)[0]
        raise ValueError(f"decoding control {name!r} is not supported by the ONNX captioner (it does "
                         f"{', '.join(CONTROLS)}); caption with trainer.caption for it")
    for name, value in (("beam_size", beam_size), ("max_len", max_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"decoding control {name!r} = {value!r}, expected an integer >= 1")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) or \
            not math.isfinite(length_penalty):
        raise ValueError(f"decoding control 'length_penalty' = {length_penalty!r}, expected a finite number")


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

    def caption(self, pixels: np.ndarray, beam_size: int = 3, max_len: int = 20, length_penalty: float = 0.0,
                **others) -> list[tuple[list[int], float]]:
        """(tokens ending in <eos> when the caption ended, score) per image; beam_size 1 is greedy search. Other
        controls (``min_len``, ``n_best``, ``sample``, ...) are refused with a ValueError naming them."""
        check_controls(beam_size, max_len, length_penalty, others)
        encoded = self.encode(pixels)
        return [self._beam(*(array[i:i + 1] for array in encoded), beam_size, max_len, length_penalty)
                for i in range(len(pixels))]

    def _beam(self, features, projected, hidden, cell, beam_size: int, max_len: int,
              length_penalty: float) -> tuple[list[int], float]:
        words = np.array([self.bos_id])
        beams = [([], 0.0)]  # (words so far, log-probability) of each live beam
        best: tuple[list[int], float] | None = None
        reachable = float(max_len) ** length_penalty
        for t in range(max_len):
            log_probs, hidden, cell, _ = self.log_probs(words, hidden, cell, features, projected)
            if beam_size == 1:  # greedy search: the most likely word, whatever it is
                word = int(np.argmax(log_probs[0]))
                beams = [(beams[0][0] + [word], beams[0][1] + float(log_probs[0, word]))]
                if word == self.eos_id:
                    return beams[0][0], beams[0][1] / float(t + 1) ** length_penalty
                words = np.array([word])
                continue
            totals = (log_probs + np.array([score for _, score in beams], dtype=np.float32)[:, None]).ravel()
            count = min(2 * beam_size, totals.size)
            top = np.argpartition(-totals, count - 1)[:count]
            top = top[np.argsort(-totals[top], kind="stable")]
            kept = []
            for rank, index in enumerate(top):
                parent, word = divmod(int(index), log_probs.shape[1])
                score = float(totals[index])
                if word == self.eos_id:
                    finished_score = score / float(t + 1) ** length_penalty
                    if rank < beam_size and (best is None or finished_score > best[1]):
                        best = (beams[parent][0] + [word], finished_score)
                elif len(kept) < beam_size:
                    kept.append((parent, word, score))
            beams = [(beams[parent][0] + [word], score) for parent, word, score in kept]
            rows = np.array([parent for parent, _, _ in kept])
            hidden, cell = hidden[rows], cell[rows]
            features, projected = features[np.zeros(len(rows), dtype=np.int64)], projected[np.zeros(len(rows),
                                                                                                  dtype=np.int64)]
            words = np.array([word for _, word, _ in kept])
            if best is not None and best[1] >= beams[0][1] / reachable:
                return best
        if best is not None:
            return best
        return beams[0][0], beams[0][1] / float(max_len) ** length_penalty
