"""Rendering a scene: flat (or striped, dotted, outlined) shapes on a (tinted) background, optional Gaussian noise."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .grid_presets import GridPreset
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


def _draw(draw: ImageDraw.ImageDraw, kind: str, x: float, y: float, half: float, **style) -> None:
    if kind == "circle":
        draw.ellipse([x - half, y - half, x + half, y + half], **style)
    elif kind == "square":
        draw.rectangle([x - half, y - half, x + half, y + half], **style)
    else:
        draw.polygon(_outline(kind, x, y, half), **style)


def _pattern(texture: str, side: int, left: float, top: float, size: float) -> np.ndarray:
    """Where a striped (horizontal bands) or dotted texture shows its colour, aligned to the shape's corner."""
    rows, columns = np.mgrid[0:side, 0:side].astype(np.float32)
    if texture == "striped":
        period = max(5.0, size / 4)
        return (rows - top) % period < period / 2
    if texture == "dotted":
        period = max(6.0, size / 3.5)
        return ((columns - left) % period - period / 2) ** 2 + ((rows - top) % period - period / 2) ** 2 <= (
            0.32 * period) ** 2
    raise ValueError(f"cannot draw texture {texture!r}")


def _draw_textured(image: Image.Image, shape: dict, fill: tuple[int, int, int]) -> None:
    """A striped, dotted or outlined shape: its colour only on the texture's pixels, the background elsewhere."""
    (x, y), size, texture = shape["centre"], shape["size"], shape["texture"]
    if texture == "outlined":
        _draw(ImageDraw.Draw(image), shape["shape"], x, y, size / 2, outline=fill, width=max(2, round(size / 10)))
        return
    mask = Image.new("L", image.size, 0)
    _draw(ImageDraw.Draw(mask), shape["shape"], x, y, size / 2, fill=255)
    inside = (np.asarray(mask) > 0) & _pattern(texture, image.size[0], x - size / 2, y - size / 2, size)
    image.paste(fill, (0, 0, *image.size), Image.fromarray(inside.astype(np.uint8) * 255))


def draw_scene(scene: dict, preset: Preset | GridPreset, noise_seed: int = 0) -> Image.Image:
    """Render ``scene`` at the preset's image size; noise (if any) comes from ``noise_seed``.

    A shape's ``"texture"`` (grid scenes) other than ``"solid"`` draws it striped, dotted or outlined."""
    side = preset.image_size
    image = Image.new("RGB", (side, side), tuple(scene.get("background", preset.background)))
    draw = ImageDraw.Draw(image)
    for shape in scene["shapes"]:
        (x, y), half, fill = shape["centre"], shape["size"] / 2, PALETTE[shape["colour"]]
        if shape.get("texture", "solid") == "solid":
            _draw(draw, shape["shape"], x, y, half, fill=fill)
        else:
            _draw_textured(image, shape, fill)
    if preset.noise:
        pixels = np.asarray(image, dtype=np.float32)
        pixels += np.random.default_rng(noise_seed).normal(0.0, preset.noise, pixels.shape).astype(np.float32)
        image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))
    return image
