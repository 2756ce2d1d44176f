"""Scene sampling: one object anywhere it fits, or two objects side by side / one above the other (a ``GridPreset``:
several objects on a grid, ``grid_scenes``)."""
from __future__ import annotations

import random

from .grid_presets import GridPreset
from .grid_scenes import sample_grid_scene
from .presets import Preset


def _object(rng: random.Random, preset: Preset) -> dict:
    return {"colour": rng.choice(sorted(preset.colours)), "shape": rng.choice(preset.shapes)}


def sample_scene(rng: random.Random, preset: Preset | GridPreset) -> dict:
    """A scene: ``{"layout": "single" | "horizontal" | "vertical", "shapes": [...]}`` (+ ``size_word`` if single).

    Shapes are ``{"colour", "shape", "size" (px), "centre": [x, y]}``; the first of two is the left or top one. A preset
    with a tinted background adds ``"background": [r, g, b]``. A ``GridPreset`` gives a grid scene instead
    (``sample_grid_scene``)."""
    if isinstance(preset, GridPreset):
        return sample_grid_scene(rng, preset)
    side = preset.image_size
    if rng.random() >= preset.two_object_probability:
        size_word = rng.choice(sorted(preset.single_sizes, key=lambda word: preset.single_sizes[word]))
        size = rng.uniform(*preset.single_sizes[size_word]) * side
        low, high = size / 2 + 4, side - size / 2 - 4
        centre = [rng.uniform(low, high), rng.uniform(low, high)]
        scene = {"layout": "single", "size_word": size_word,
                 "shapes": [{**_object(rng, preset), "size": size, "centre": centre}]}
    else:
        layout = rng.choice(sorted(preset.relations))
        jitter = preset.position_jitter * side
        shapes = []
        for half in (0.25, 0.75):
            along, across = half * side + rng.uniform(-jitter, jitter), side / 2 + rng.uniform(-jitter, jitter)
            centre = [along, across] if layout == "horizontal" else [across, along]
            shapes.append({**_object(rng, preset), "size": rng.uniform(*preset.pair_size) * side, "centre": centre})
        scene = {"layout": layout, "shapes": shapes}
    if preset.background_tint:
        scene["background"] = [min(255, max(0, value + rng.randint(-preset.background_tint, preset.background_tint)))
                               for value in preset.background]
    return scene
