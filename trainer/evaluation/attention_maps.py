"""Attention maps drawn over the image the model saw: one panel per generated word, labelled underneath.

One renderer for the caption CLI's PNGs and the ``val/attention`` TensorBoard images.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from data_pipelines.transforms import IMAGENET_MEAN, IMAGENET_STD

PANEL_COLUMNS = 5
LABEL_HEIGHT = 20  # pixels of text strip under each panel
HEAT_OPACITY = 0.55


def denormalize(pixels: torch.Tensor) -> Image.Image:
    """The RGB image behind normalised model input pixels (3, H, W)."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return F.to_pil_image((pixels.detach().cpu().float() * std + mean).clamp(0, 1))


def crop_like_model(image: Image.Image, image_size: int) -> Image.Image:
    """The region the model sees (shorter side resized, centre crop), as a displayable RGB image."""
    image = F.resize(image, image_size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return F.center_crop(image, image_size)


def heat_colours(weights: np.ndarray) -> np.ndarray:
    """Black-red-yellow-white colour map of values in [0, 1] -> uint8 RGB."""
    scaled = np.clip(weights, 0.0, 1.0)[..., None] * 3.0
    rgb = np.clip(scaled - np.array([0.0, 1.0, 2.0]), 0.0, 1.0)
    return (rgb * 255).astype(np.uint8)


def attention_panel(image: Image.Image, alpha: np.ndarray, grid_size: int) -> Image.Image:
    """``image`` with the (grid_size**2,) attention weights upsampled over it as a heatmap."""
    grid = alpha.reshape(grid_size, grid_size).astype(np.float32)
    grid = grid / grid.max() if grid.max() > 0 else grid
    upsampled = Image.fromarray((grid * 255).astype(np.uint8), mode="L").resize(image.size, Image.BICUBIC)
    heat = Image.fromarray(heat_colours(np.asarray(upsampled, dtype=np.float32) / 255.0), mode="RGB")
    return Image.blend(image, heat, HEAT_OPACITY)


def attention_figure(image: Image.Image, words: list[str], alphas: np.ndarray, grid_size: int,
                     columns: int = PANEL_COLUMNS) -> Image.Image:
    """Grid of panels: the image, then one heatmap panel per generated word, each labelled underneath."""
    panels = [(image, "<image>")] + [(attention_panel(image, alpha, grid_size), word) for word, alpha in zip(words, alphas)]
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    width, height = image.size
    figure = Image.new("RGB", (columns * width, rows * (height + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(figure)
    font = ImageFont.load_default()
    for index, (panel, label) in enumerate(panels):
        left, top = (index % columns) * width, (index // columns) * (height + LABEL_HEIGHT)
        figure.paste(panel, (left, top))
        draw.text((left + 3, top + height + 3), label, fill="black", font=font)
    return figure
