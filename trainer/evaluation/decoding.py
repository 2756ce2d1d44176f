"""Caption a split with batched beam search on every rank, then gather the captions on the main process.

Shared by validation during training and the ``trainer.evaluate_checkpoint`` CLI, so both score the same way.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from accelerate.utils import gather_object

from data_pipelines.stream_samples import model_input
from modeling import DecodingOptions
from trainer.config.decoding_controls import options_from_controls


def eval_decoding_options(eval_config, vocab) -> DecodingOptions:
    """The DecodingOptions of a train config's ``eval`` section (``suppress_unk``: this vocabulary's <unk>)."""
    return options_from_controls(eval_config, vocab.unk_id)


def decode_batches(model, vocab, loader: Iterable[dict], device,
                   options: DecodingOptions) -> Iterator[tuple[dict, object, list[tuple]]]:
    """Per eval batch: the batch, its ``Generation`` (image-major, ``options.n_best`` rows per image) and rows
    ``(image_id, best caption, references)``. When sampling, an image's seed is ``options.seed`` + its position in
    this rank's stream."""
    position = 0
    for batch in loader:
        count = len(batch["image_id"])
        generation = model.generate(model_input(batch).to(device), options,
                                    seeds=[options.seed + position + i for i in range(count)])
        position += count
        rows = [(image_id, vocab.decode(tokens), list(references))
                for image_id, tokens, references in zip(batch["image_id"], generation.tokens[::options.n_best].tolist(),
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
