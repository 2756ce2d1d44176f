"""Validation: batched beam search over the val split sharded across ranks, gathered, scored on the main process."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import functional as TF

from data_pipelines.stream import build_eval_loader
from trainer.config.schema import TrainConfig
from trainer.distributed.run_control import iterate_isolated
from trainer.evaluation.attention_maps import attention_figure, denormalize
from trainer.evaluation.decoding import decode_batches, eval_decoding_options, gather_captions
from trainer.evaluation.metrics import caption_metrics_and_cider, compute_meteor

OVERLAY_WORDS = 8  # attention panels per logged image
FEATURE_PANEL = 64  # side in pixels of an attention panel when the input is cached features (no pixels to overlay)


@dataclass
class ValidationResult:
    """Metrics (``Bleu_1``..``CIDEr``), each image's CIDEr-D (by ``str(image_id)``) and logging material; filled on
    the main process only."""

    metrics: dict = field(default_factory=dict)
    cider_per_image: dict[str, float] = field(default_factory=dict)
    samples_markdown: str = ""
    attention_image: torch.Tensor | None = None  # one row [image | word 1 | word 2 ...] per sample, (3, H, W)
    num_images: int = 0


def attention_overlay(pixels: torch.Tensor | None, caption: str, alphas: torch.Tensor, grid_size: int) -> torch.Tensor:
    """One row [image | word 1 | word 2 ... | <end>] (3, H, W) in [0, 1]: each step's attention over the image (over
    a black square when the input is cached features: there are no pixels to draw on)."""
    image = denormalize(pixels) if pixels is not None else Image.new("RGB", (FEATURE_PANEL, FEATURE_PANEL))
    words = (caption.split() + ["<end>"])[:len(alphas)]
    figure = attention_figure(image, words, alphas[:len(words)].cpu().float().numpy(), grid_size,
                              columns=len(words) + 1)
    return TF.to_tensor(figure)


def _markdown(rows: list[tuple[str, str, list[str]]]) -> str:
    lines = ["| image_id | prediction | first reference |", "|---|---|---|"]
    lines += [f"| {image_id} | {prediction} | {references[0] if references else ''} |"
              for image_id, prediction, references in rows]
    return "\n".join(lines)


def _stack_rows(strips: list[torch.Tensor]) -> torch.Tensor | None:
    """Overlay strips of different widths stacked top to bottom (right-padded with black)."""
    if not strips:
        return None
    width = max(strip.shape[2] for strip in strips)
    return torch.cat([F.pad(strip, (0, width - strip.shape[2])) for strip in strips], dim=1)


@torch.no_grad()
def validate(accelerator, model, vocab, config: TrainConfig) -> ValidationResult:
    """Caption every image of ``config.eval.split`` once over all ranks (``model`` unwrapped); score on main."""
    loader = build_eval_loader(config.data.root, split=config.eval.split, vocab=vocab,
                               batch_size=config.eval.batch_size, rank=accelerator.process_index,
                               world_size=accelerator.num_processes, num_workers=config.data.num_workers,
                               image_size=config.data.image_size, features_root=config.data.features)
    records, overlays = [], []
    with torch.random.fork_rng(devices=[]):  # validation leaves the training RNG stream untouched
        for batch, generation, rows in decode_batches(model, vocab, iterate_isolated(loader), accelerator.device,
                                                      eval_decoding_options(config.eval, vocab)):
            records += rows
            for i, (_, caption, _) in enumerate(rows):
                if accelerator.is_main_process and len(overlays) < config.eval.num_samples:
                    length = max(1, min(OVERLAY_WORDS, len(caption.split()) + 1))
                    pixels = batch["pixels"][i] if "pixels" in batch else None
                    overlays.append(attention_overlay(pixels, caption, generation.alphas[i, :length],
                                                      model.config.grid_size))
    predictions, references = gather_captions(accelerator, records)
    result = ValidationResult(attention_image=_stack_rows(overlays))
    if not accelerator.is_main_process:
        return result
    result.num_images = len(predictions)
    if predictions:
        result.metrics, cider_per_image = caption_metrics_and_cider(predictions, references)
        result.cider_per_image = {str(image_id): score for image_id, score in cider_per_image.items()}
        result.metrics.update(compute_meteor(predictions, references))  # {} without Java (logged once)
    rows = [(image_id, predictions[image_id], references[image_id]) for image_id in list(predictions)]
    result.samples_markdown = _markdown(rows[:config.eval.num_samples])
    return result
