"""Grid scene sampling: each object alone in its own cell of a 3 x 3 grid, so objects never overlap."""
from __future__ import annotations

import random

from .grid_presets import GRID, GridPreset

# the cells (row * GRID + column) of each row, then of each column
_LINES = [[row * GRID + column for column in range(GRID)] for row in range(GRID)] + [
    [row * GRID + column for row in range(GRID)] for column in range(GRID)]


def _look(rng: random.Random, preset: GridPreset) -> dict:
    return {"colour": rng.choice(sorted(preset.colours)), "shape": rng.choice(preset.shapes),
            "texture": rng.choice(preset.textures), "size_word": rng.choice(sorted(preset.sizes))}


def sample_grid_scene(rng: random.Random, preset: GridPreset) -> dict:
    """A scene: ``{"layout": "grid", "shapes": [...]}``, the shapes in reading order (by cell).

    Shapes are ``{"colour", "shape", "texture", "size_word", "size" (px), "centre": [x, y], "cell": [row, column]}``;
    each lies inside its cell (2 px from its edges when it can). A later shape copies an earlier one's look (colour,
    shape, texture, size word) with ``repeat_probability``; with ``line_probability`` a scene of three objects or more
    fills a whole row or column. A preset with a tinted background adds ``"background": [r, g, b]``."""
    cell_side = preset.image_size / GRID
    count = rng.choice(preset.object_counts)
    if count >= GRID and rng.random() < preset.line_probability:  # a full row or column, the rest anywhere
        line = rng.choice(_LINES)
        cells = sorted([*line, *rng.sample([c for c in range(GRID * GRID) if c not in line], count - GRID)])
    else:
        cells = sorted(rng.sample(range(GRID * GRID), count))
    shapes = []
    for cell in cells:
        if shapes and rng.random() < preset.repeat_probability:
            model = rng.choice(shapes)
            look = {key: model[key] for key in ("colour", "shape", "texture", "size_word")}
        else:
            look = _look(rng, preset)
        size = rng.uniform(*preset.sizes[look["size_word"]]) * cell_side
        slack = max(0.0, (cell_side - size) / 2 - 2)
        row, column = divmod(cell, GRID)
        centre = [(column + 0.5) * cell_side + rng.uniform(-slack, slack),
                  (row + 0.5) * cell_side + rng.uniform(-slack, slack)]
        shapes.append({**look, "size": size, "centre": centre, "cell": [row, column]})
    scene = {"layout": "grid", "shapes": shapes}
    if preset.background_tint:
        scene["background"] = [min(255, max(0, value + rng.randint(-preset.background_tint, preset.background_tint)))
                               for value in preset.background]
    return scene
