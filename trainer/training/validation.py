"""Validation: batched beam search over the val split sharded across ranks, gathered, scored on the main process.

A mixture (``data.sources``) validates each source's val split on its own; the run's score (``val/CIDEr`` etc., what
picks best/ and counts for eval.patience) is the weight-weighted mean of the sources' scores, and each source's scores
are logged as ``val/<source>/<metric>``."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import functional as TF

from data_pipelines.data_sources import DataSource
from data_pipelines.stream import build_eval_loader
from trainer.config.schema import TrainConfig
from trainer.distributed.run_control import iterate_isolated
from trainer.evaluation.attention_maps import attention_figure, denormalize
from trainer.evaluation.decoding import decode_batches, eval_decoding_options, gather_captions
from trainer.evaluation.metrics import PRIMARY_SCORE, score_captions

OVERLAY_WORDS = 8  # attention panels per logged image
FEATURE_PANEL = 64  # side in pixels of an attention panel when the input is cached features (no pixels to overlay)


@dataclass
class ValidationResult:
    """Metrics (every registered metric's scores), each image's CIDEr-D (by ``str(image_id)``) and logging material;
    filled on the main process only. For a mixture: ``metrics`` are the weighted means of ``source_metrics`` (source name ->
    that source's metrics), and ``cider_per_image`` is keyed ``<source>/<image_id>`` and scaled so that its mean is the
    weighted mean CIDEr-D (so best/'s paired check compares what picks best/)."""

    metrics: dict = field(default_factory=dict)
    source_metrics: dict[str, dict] = field(default_factory=dict)
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


def validate(accelerator, model, vocab, config: TrainConfig) -> ValidationResult:
    """Caption every image of ``config.eval.split`` of every source once over all ranks (``model`` unwrapped); score
    on main (a mixture: see the module docstring)."""
    sources = config.data_sources()
    if len(sources) == 1:
        return validate_source(accelerator, model, vocab, config, sources[0])
    results = {source.name: validate_source(accelerator, model, vocab, config, source) for source in sources}
    return weighted_result(results, sources) if accelerator.is_main_process else ValidationResult()


def weighted_result(results: dict[str, ValidationResult], sources: list[DataSource]) -> ValidationResult:
    """One result of a mixture's per-source results (see ``ValidationResult``)."""
    total = math.fsum(source.weight for source in sources)
    shares = {source.name: source.weight / total for source in sources}
    common = [name for name in results[sources[0].name].metrics if all(name in r.metrics for r in results.values())]
    metrics = {name: math.fsum(shares[source] * result.metrics[name] for source, result in results.items())
               for name in common}
    images = sum(len(result.cider_per_image) for result in results.values())
    per_image = {f"{source}/{image_id}": score * shares[source] * images / max(1, len(result.cider_per_image))
                 for source, result in results.items() for image_id, score in result.cider_per_image.items()}
    return ValidationResult(metrics=metrics, source_metrics={source: r.metrics for source, r in results.items()},
                            cider_per_image=per_image,
                            samples_markdown="\n\n".join(f"**{source}**\n\n{r.samples_markdown}"
                                                          for source, r in results.items()),
                            attention_image=_stack_rows([r.attention_image for r in results.values()
                                                         if r.attention_image is not None]),
                            num_images=sum(result.num_images for result in results.values()))


@torch.no_grad()
def validate_source(accelerator, model, vocab, config: TrainConfig, source: DataSource) -> ValidationResult:
    """Caption every image of ``config.eval.split`` of ``source`` once over all ranks; score on main."""
    loader = build_eval_loader(source.root, split=config.eval.split, vocab=vocab,
                               batch_size=config.eval.batch_size, rank=accelerator.process_index,
                               world_size=accelerator.num_processes, num_workers=config.data.num_workers,
                               image_size=config.data.image_size, features_root=source.features)
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
        scores = score_captions(predictions, references, config.eval.metrics or None,  # METEOR needs Java (logged)
                                per_image=False)
        result.metrics = scores.metrics
        result.cider_per_image = {str(image_id): values[PRIMARY_SCORE] for image_id, values in scores.per_image.items()}
    rows = [(image_id, predictions[image_id], references[image_id]) for image_id in list(predictions)]
    result.samples_markdown = _markdown(rows[:config.eval.num_samples])
    return result
