"""Caption a split with batched beam search on every rank, then gather the captions on the main process.

Shared by validation during training and the ``trainer.evaluate_checkpoint`` CLI, so both score the same way.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from accelerate.utils import gather_object

from data_pipelines.stream_samples import model_input


def decode_batches(model, vocab, loader: Iterable[dict], device, beam_size: int, max_len: int,
                   length_penalty: float = 0.0) -> Iterator[tuple[dict, object, list[tuple]]]:
    """Per eval batch: the batch, its ``Generation`` and rows ``(image_id, caption, references)``."""
    for batch in loader:
        generation = model.generate(model_input(batch).to(device), beam_size=beam_size, max_len=max_len,
                                    length_penalty=length_penalty)
        rows = [(image_id, vocab.decode(tokens), list(references))
                for image_id, tokens, references in zip(batch["image_id"], generation.tokens.tolist(),
                                                        batch["references"])]
        yield batch, generation, rows


def gather_captions(accelerator, rows: list[tuple]) -> tuple[dict, dict]:
    """Every rank's rows as ``(predictions, references)`` by image id on the main process (an image two ranks both
    captioned counts once, first come); two empty dicts on the other ranks."""
    gathered = gather_object(rows) if accelerator.num_processes > 1 else rows
    predictions, references = {}, {}
    if accelerator.is_main_process:
        for image_id, caption, image_references in gathered:
            predictions.setdefault(image_id, caption)
            references.setdefault(image_id, list(image_references))
    return predictions, references
