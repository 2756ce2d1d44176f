"""Caption images from Python with a trained checkpoint, preprocessed exactly as in training.

    from trainer.inference import CaptionPipeline
    pipe = CaptionPipeline.from_checkpoint("runs/demo/best", device="cpu", dtype="float32")
    results = pipe(["a.jpg", pil_image], beam_size=5, n_best=2)   # keyword arguments: DecodingOptions fields
    results[0].captions[0].text, results[0].captions[0].score

Images are turned upright by their EXIF orientation and converted to RGB as ``data_pipelines.prepare`` does, then
resized and centre-cropped to the checkpoint's ``data.image_size`` with ImageNet normalisation (``eval_transform``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from data_pipelines.image_files import INPUT_FORMATS, to_rgb, upright
from data_pipelines.transforms import eval_transform
from data_pipelines.vocab import Vocabulary
from modeling import Captioner, DecodingOptions
from modeling.captioner import WEIGHTS_NAME
from modeling.encoder import encoder_description
from trainer.checkpointing.folder_links import link_leading_out
from trainer.inference.weight_checks import check_weights

DEFAULT_IMAGE_SIZE = 224
# A checkpoint's image size is read from a file we did not write. Memory grows with its square (ResNet-50's largest
# activation is 64 x S/2 x S/2 floats: 268 MB an image at 2048) while the encoder pools to a fixed grid anyway, so
# sides past 2048 (9x the usual 224) are refused rather than allocated.
MAX_IMAGE_SIZE = 2048
DECODE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DECODE_DTYPE_HELP = ("float32 (default) | bfloat16: matrix products in bfloat16, scores in float32; ~2x faster batched "
                     "beam search on CPUs with AMX and on GPUs, captions may differ slightly (docs/results.md, Decoding in bfloat16)")


@dataclass
class Caption:
    """One caption: its words, score (log-probability / length**length_penalty) and, on request, the attention
    weights of each word (words, regions)."""

    text: str
    score: float
    alphas: np.ndarray | None = None


@dataclass
class ImageCaptions:
    """The captions of one input, best first; ``error`` says why there are none (an unreadable file)."""

    source: str
    captions: list[Caption] = field(default_factory=list)
    error: str | None = None
    image: Image.Image | None = None  # the upright RGB image that was captioned


def checkpoint_image_size(checkpoint: Path) -> int | None:
    """``data.image_size`` of the train config saved in ``CKPT/trainer_state.json``, if it records one."""
    state_path = checkpoint / "trainer_state.json"
    if not state_path.is_file():
        return None
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        data = (state.get("train_config") or {}).get("data") or {}
    except json.JSONDecodeError as error:
        raise ValueError(f"{state_path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    except AttributeError:
        raise ValueError(f"{state_path}: train_config.data must be an object") from None
    size = data.get("image_size") if isinstance(data, dict) else None
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_IMAGE_SIZE:
        raise ValueError(f"{state_path}: key 'train_config.data.image_size' = {size!r:.40}, expected a positive integer "
                         f"at most {MAX_IMAGE_SIZE} (a larger side only costs memory: the encoder pools to a fixed grid)")
    return size


def resolve_image_size(checkpoint: Path, image_size: int | None) -> int:
    """An explicit ``image_size`` wins over the checkpoint's train config, which wins over 224."""
    return image_size or checkpoint_image_size(checkpoint) or DEFAULT_IMAGE_SIZE


def load_for_inference(checkpoint: str | Path, image_size: int | None,
                       device: torch.device | str = "cpu") -> tuple[Captioner, Vocabulary, int]:
    """Model (eval mode, on ``device``), vocabulary and image size (``resolve_image_size``) of a checkpoint dir;
    FileNotFoundError / ValueError with a one-line reason when the folder is not a usable checkpoint."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"checkpoint {checkpoint} is not a directory (expected config.json, "
                                f"model.safetensors, vocab.json)")
    if problem := link_leading_out(checkpoint):
        raise ValueError(problem)
    vocab_path = checkpoint / "vocab.json"
    if not vocab_path.is_file():
        raise FileNotFoundError(f"{vocab_path} does not exist (a checkpoint dir must contain vocab.json)")
    try:
        model = Captioner.from_pretrained(checkpoint, map_location="cpu").to(device).eval()
        vocab = Vocabulary.load(vocab_path)
    except (FileNotFoundError, ValueError):
        raise
    except Exception as error:  # noqa: BLE001 - e.g. a config.json missing a field, a truncated safetensors file
        raise ValueError(f"checkpoint {checkpoint} cannot be loaded: {type(error).__name__}: {error}") from None
    check_weights(checkpoint / WEIGHTS_NAME, model)
    if len(vocab) != model.config.vocab_size:
        raise ValueError(f"{vocab_path} has {len(vocab)} words but {checkpoint}/config.json says vocab_size="
                         f"{model.config.vocab_size}")
    return model, vocab, resolve_image_size(checkpoint, image_size)


def load_image(path: Path | BinaryIO) -> Image.Image:
    """Upright RGB image of ``path`` (or of an open binary file, e.g. a request body); OSError/ValueError with the
    reason when it is missing or not a readable image."""
    if isinstance(path, Path) and not path.is_file():
        raise FileNotFoundError("no such file")
    try:
        with Image.open(path, formats=INPUT_FORMATS) as image:
            return prepare_image(image)
    except UnidentifiedImageError:
        raise ValueError(f"not a readable image file (formats read: {', '.join(INPUT_FORMATS)})") from None
    except Image.DecompressionBombError as error:
        raise ValueError(f"refused: {error}") from None
    except (OSError, SyntaxError) as error:
        raise ValueError(f"cannot decode image ({error})") from None


def prepare_image(image: Image.Image) -> Image.Image:
    """Upright (EXIF orientation) RGB copy of ``image``, as ``data_pipelines.prepare`` stores training images."""
    image, _ = upright(image)
    return to_rgb(image, image.mode)[0].copy()


class CaptionPipeline:
    """A checkpoint's model, vocabulary and preprocessing; call it on images or paths to caption them."""

    def __init__(self, model: Captioner, vocab: Vocabulary, image_size: int):
        self.model, self.vocab, self.image_size = model, vocab, image_size
        self.transform = eval_transform(image_size)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device: str | torch.device = "cpu", dtype: str = "float32",
                        image_size: int | None = None) -> "CaptionPipeline":
        """Load ``checkpoint`` (a folder with config.json, model.safetensors, vocab.json) onto ``device``, decoding
        in ``dtype`` ("float32" | "bfloat16")."""
        if dtype not in DECODE_DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DECODE_DTYPES)}, got {dtype!r}")
        model, vocab, size = load_for_inference(checkpoint, image_size, device)
        return cls(model.to(DECODE_DTYPES[dtype]), vocab, size)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path, revision: str | None = None, **kwargs) -> "CaptionPipeline":
        """``from_checkpoint`` of a local folder or, when no such folder exists, of a Hugging Face Hub repository
        ``ORG/NAME`` at ``revision`` (``trainer.inference.hub``: its cache, HF_HUB_OFFLINE, checked files)."""
        from trainer.inference.hub import resolve_checkpoint

        return cls.from_checkpoint(resolve_checkpoint(name_or_dir, revision), **kwargs)

    @property
    def device(self) -> torch.device:
        return self.model.decoder.output.weight.device

    @property
    def encoder(self) -> str:
        """How the checkpoint's backbone was trained (frozen, or fine-tuned from a stage: its weights are used)."""
        return encoder_description(self.model.config.finetune_from)

    def options(self, options: DecodingOptions | None = None, suppress_unk: bool = False,
                **changes) -> DecodingOptions:
        """``options`` with ``changes``; ``suppress_unk`` adds this vocabulary's <unk> to the suppressed words."""
        options = (options or DecodingOptions()).replace(**changes)
        if suppress_unk:
            options = options.replace(suppress_ids=tuple(sorted({*options.suppress_ids, self.vocab.unk_id})))
        return options

    def __call__(self, images: Sequence[str | Path | Image.Image], options: DecodingOptions | None = None, *,
                 batch_size: int = 8, attention: bool = False, suppress_unk: bool = False,
                 **changes) -> list[ImageCaptions]:
        """One ``ImageCaptions`` per input, in order: ``options.n_best`` captions, best first (``attention``: with
        their attention weights). A path that cannot be read gets ``error`` instead; the others are captioned.
        Image i samples with seed ``options.seed + i``: batching never changes a caption."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        options = self.options(options, suppress_unk, **changes)
        results = [self.load(item) for item in images]
        for result in results:  # the resize target too, before any pixel is allocated
            if result.error is None:
                result.error = self.transform.resize_problem(*result.image.size)
        loaded = [index for index, result in enumerate(results) if result.error is None]
        for start in range(0, len(loaded), batch_size):
            indices = loaded[start:start + batch_size]
            pixels = torch.stack([self.transform(results[index].image) for index in indices])
            captions = self.caption_pixels(pixels, options, [options.seed + index for index in indices], attention)
            for index, image_captions in zip(indices, captions):
                results[index].captions = image_captions
        return results

    def caption_pixels(self, pixels: torch.Tensor, options: DecodingOptions, seeds: Sequence[int],
                       attention: bool = False) -> list[list[Caption]]:
        """The captions of each image of a batch already transformed (``self.transform``), image i sampling with
        ``seeds[i]``; ``options`` as given (``self.options`` adds suppress_unk)."""
        generation = self.model.generate(pixels.to(self.device), options, seeds=list(seeds))
        tokens, scores = generation.tokens.tolist(), generation.scores.tolist()
        captions: list[list[Caption]] = [[] for _ in range(len(pixels))]
        for row, (tokens_row, score) in enumerate(zip(tokens, scores)):
            text = self.vocab.decode(tokens_row)
            alphas = generation.alphas[row, :len(text.split())].cpu().numpy() if attention else None
            captions[row // options.n_best].append(Caption(text, score, alphas))
        return captions

    @staticmethod
    def load(item: str | Path | Image.Image) -> ImageCaptions:
        """An input ready to caption (``image`` set), or its ``error``."""
        if isinstance(item, Image.Image):
            return ImageCaptions("<image>", image=prepare_image(item))
        try:
            return ImageCaptions(str(item), image=load_image(Path(item)))
        except Exception as error:  # noqa: BLE001 - whatever one image does wrong, the others are still captioned
            return ImageCaptions(str(item), error=str(error))
