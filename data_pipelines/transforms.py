"""Image transforms: PIL RGB image -> ImageNet-normalised float tensor (3, S, S).

Train-time augmentation is deliberately light and never flips horizontally: captions say "left of" / "right of".
Randomness comes from an optional ``torch.Generator`` (else the global torch RNG), so a stream seeded by its own
generator is reproducible without touching the trainer's global RNG.
"""
from __future__ import annotations

import math

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SCALE = (0.8, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
# The shorter side is resized to image_size first: a 1 x 65000 image at 224 would become 224 x 14.6 million pixels
# (10 GB). The resized image may hold at most this many pixels (~100 MB as RGB): aspect ratios up to ~650:1 at 224.
MAX_RESIZED_PIXELS = 1 << 25


def _to_normalised_tensor(image: Image.Image) -> torch.Tensor:
    return F.normalize(F.to_tensor(image), IMAGENET_MEAN, IMAGENET_STD)


class EvalTransform:
    """Resize the shorter side to ``image_size``, center crop ``image_size`` x ``image_size``, normalise."""

    def __init__(self, image_size: int):
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self.image_size = image_size

    def resize_problem(self, width: int, height: int) -> str | None:
        """Why an image of ``width`` x ``height`` must not be resized (checked before any allocation), or None."""
        short, long = sorted((width, height))
        resized_long = math.ceil(long * self.image_size / max(short, 1))
        if short < 1 or self.image_size * resized_long > MAX_RESIZED_PIXELS:
            return (f"image of {width} x {height} pixels: resizing its shorter side to {self.image_size} would make "
                    f"{self.image_size} x {resized_long} pixels, more than {MAX_RESIZED_PIXELS} (aspect ratio too "
                    f"extreme)")
        return None

    def __call__(self, image: Image.Image, generator: torch.Generator | None = None) -> torch.Tensor:
        problem = self.resize_problem(image.width, image.height)
        if problem:
            raise ValueError(problem)
        image = F.resize(image, self.image_size, interpolation=InterpolationMode.BILINEAR, antialias=True)
        return _to_normalised_tensor(F.center_crop(image, self.image_size))


class RandomCropTransform:
    """Random resized crop (area scale 0.8-1, aspect 3/4-4/3) to ``image_size``, normalise. No flip."""

    def __init__(self, image_size: int, scale: tuple[float, float] = CROP_SCALE,
                 ratio: tuple[float, float] = CROP_RATIO):
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self.image_size, self.scale, self.ratio = image_size, scale, ratio

    def crop_box(self, width: int, height: int, generator: torch.Generator | None) -> tuple[int, int, int, int]:
        """(top, left, h, w) of the crop; falls back to the largest centred square-ish crop after 10 misses."""
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            draws = torch.rand(4, generator=generator).tolist()
            target_area = area * (self.scale[0] + draws[0] * (self.scale[1] - self.scale[0]))
            aspect = math.exp(log_ratio[0] + draws[1] * (log_ratio[1] - log_ratio[0]))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(draws[2] * (height - h + 1))
                left = int(draws[3] * (width - w + 1))
                return min(top, height - h), min(left, width - w), h, w
        side = min(width, height)
        return (height - side) // 2, (width - side) // 2, side, side

    def __call__(self, image: Image.Image, generator: torch.Generator | None = None) -> torch.Tensor:
        top, left, h, w = self.crop_box(image.width, image.height, generator)
        image = F.resized_crop(image, top, left, h, w, [self.image_size, self.image_size],
                               interpolation=InterpolationMode.BILINEAR, antialias=True)
        return _to_normalised_tensor(image)


def eval_transform(image_size: int) -> EvalTransform:
    """Deterministic resize + center crop + normalise (validation, test, feature cache)."""
    return EvalTransform(image_size)


def train_transform(image_size: int, augment: bool = False) -> EvalTransform | RandomCropTransform:
    """Random resized crop (scale 0.8-1, no horizontal flip) when ``augment``, else ``eval_transform``."""
    return RandomCropTransform(image_size) if augment else EvalTransform(image_size)
