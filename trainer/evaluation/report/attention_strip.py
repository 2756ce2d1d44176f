"""One picture per caption: the image, then the attention heatmap of each generated word, side by side."""
from __future__ import annotations

import numpy as np
from PIL import Image

from trainer.evaluation.attention_maps import attention_panel

PANEL_SIDE = 96  # pixels per panel; the gallery labels each panel with its word underneath


def attention_strip(image: Image.Image, alphas: np.ndarray, grid_size: int, side: int = PANEL_SIDE) -> Image.Image:
    """[image | word 1 heatmap | ...] of ``side`` px squares; ``alphas`` is (words, grid_size**2)."""
    base = image.resize((side, side), Image.BICUBIC)
    panels = [base] + [attention_panel(base, alpha, grid_size) for alpha in np.asarray(alphas, dtype=np.float32)]
    strip = Image.new("RGB", (side * len(panels), side), "white")
    for index, panel in enumerate(panels):
        strip.paste(panel, (index * side, 0))
    return strip
