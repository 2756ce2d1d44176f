"""Rendering a scene: flat shapes on a (tinted) background, optional Gaussian pixel noise."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .presets import PALETTE, Preset


def _outline(kind: str, x: float, y: float, half: float) -> list[tuple[float, float]]:
    """Polygon vertices of a shape of half-width ``half`` centred at (x, y) (image y grows downwards)."""
    if kind == "triangle":
        return [(x, y - half), (x - half, y + half), (x + half, y + half)]
    if kind == "diamond":
        return [(x, y - half), (x + half * 0.75, y), (x, y + half), (x - half * 0.75, y)]
    if kind == "star":
        points = []
        for index in range(10):
            radius = half if index % 2 == 0 else half * 0.45
            angle = -math.pi / 2 + index * math.pi / 5
            points.append((x + radius * math.cos(angle), y + radius * math.sin(angle)))
        return points
    if kind == "cross":
        arm = half / 3
        return [(x - arm, y - half), (x + arm, y - half), (x + arm, y - arm), (x + half, y - arm),
                (x + half, y + arm), (x + arm, y + arm), (x + arm, y + half), (x - arm, y + half),
                (x - arm, y + arm), (x - half, y + arm), (x - half, y - arm), (x - arm, y - arm)]
    raise ValueError(f"cannot draw shape {kind!r}")


def draw_scene(scene: dict, preset: Preset, noise_seed: int = 0) -> Image.Image:
    """Render ``scene`` at the preset's image size; noise (if any) comes from ``noise_seed``."""
    side = preset.image_size
    image = Image.new("RGB", (side, side), tuple(scene.get("background", preset.background)))
    draw = ImageDraw.Draw(image)
    for shape in scene["shapes"]:
        (x, y), half, fill = shape["centre"], shape["size"] / 2, PALETTE[shape["colour"]]
        if shape["shape"] == "circle":
            draw.ellipse([x - half, y - half, x + half, y + half], fill=fill)
        elif shape["shape"] == "square":
            draw.rectangle([x - half, y - half, x + half, y + half], fill=fill)
        else:
            draw.polygon(_outline(shape["shape"], x, y, half), fill=fill)
    if preset.noise:
        pixels = np.asarray(image, dtype=np.float32)
        pixels += np.random.default_rng(noise_seed).normal(0.0, preset.noise, pixels.shape).astype(np.float32)
        image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))
    return image
