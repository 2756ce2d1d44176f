"""Validation: batched beam search over the val split sharded across ranks, gathered, scored on the main process."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from accelerate.utils import gather_object

from data_pipelines.stream import build_eval_loader
from trainer.config import TrainConfig
from trainer.metrics import compute_caption_metrics, compute_meteor
from trainer.run_control import iterate_isolated

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
OVERLAY_WORDS = 8  # attention panels per logged image
FEATURE_PANEL = 64  # side in pixels of an attention panel when the input is cached features (no pixels to overlay)


@dataclass
class ValidationResult:
    """Metrics (``Bleu_1``..``CIDEr``) and logging material; filled on the main process only."""

    metrics: dict = field(default_factory=dict)
    samples_markdown: str = ""
    attention_image: torch.Tensor | None = None  # one row [image | word 1 | word 2 ...] per sample, (3, H, W)
    num_images: int = 0


def model_input(batch: dict) -> torch.Tensor:
    """The batch's backbone features when it carries them, else its normalised pixels."""
    return batch["features"] if "features" in batch else batch["pixels"]


def attention_overlay(pixels: torch.Tensor | None, alphas: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Strip [image | attention of word 1 | ...]: ``alphas`` (L, R) over a grid, upsampled onto the image (red)."""
    side = pixels.shape[-1] if pixels is not None else FEATURE_PANEL
    base = (pixels.cpu().float() * IMAGENET_STD + IMAGENET_MEAN).clamp(0, 1) if pixels is not None \
        else torch.zeros(3, side, side)
    maps = alphas[:OVERLAY_WORDS].cpu().float().reshape(-1, 1, grid_size, grid_size)
    maps = F.interpolate(maps, size=(side, side), mode="bilinear", align_corners=False)
    maps = maps / maps.amax(dim=(2, 3), keepdim=True).clamp_min(1e-8)
    heat = torch.zeros(maps.shape[0], 3, side, side)
    heat[:, 0] = maps[:, 0]
    panels = (0.5 * base + 0.5 * heat).clamp(0, 1) if pixels is not None else heat + maps.expand(-1, 3, -1, -1) * 0.3
    return torch.cat([base, *panels.clamp(0, 1)], dim=2)


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
        for batch in iterate_isolated(loader):
            inputs = model_input(batch).to(accelerator.device)
            generation = model.generate(inputs, beam_size=config.eval.beam_size, max_len=config.eval.max_len,
                                        length_penalty=config.eval.length_penalty)
            for i, image_id in enumerate(batch["image_id"]):
                records.append((image_id, vocab.decode(generation.tokens[i].tolist()), batch["references"][i]))
                if accelerator.is_main_process and len(overlays) < config.eval.num_samples:
                    length = max(1, min(OVERLAY_WORDS, len(records[-1][1].split()) + 1))
                    pixels = batch["pixels"][i] if "pixels" in batch else None
                    overlays.append(attention_overlay(pixels, generation.alphas[i, :length], model.config.grid_size))
    gathered = gather_object(records)
    result = ValidationResult(attention_image=_stack_rows(overlays))
    if not accelerator.is_main_process:
        return result
    predictions, references = {}, {}
    for image_id, prediction, image_references in gathered:  # an image seen by two ranks counts once
        predictions.setdefault(image_id, prediction)
        references.setdefault(image_id, list(image_references))
    result.num_images = len(predictions)
    if predictions:
        result.metrics = compute_caption_metrics(predictions, references)
        result.metrics.update(compute_meteor(predictions, references))  # {} without Java (logged once)
    rows = [(image_id, predictions[image_id], references[image_id]) for image_id in list(predictions)]
    result.samples_markdown = _markdown(rows[:config.eval.num_samples])
    return result
