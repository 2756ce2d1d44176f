"""trainer.evaluation.attention_maps: one renderer for the caption CLI's PNGs and the val/attention TensorBoard rows."""
import numpy as np
import torch
from PIL import Image

from data_pipelines.transforms import IMAGENET_MEAN, IMAGENET_STD
from trainer.evaluation.attention_maps import LABEL_HEIGHT, attention_panel
from trainer.training.validation import attention_overlay


def test_attention_panel_highlights_attended_cell():
    image = Image.new("RGB", (70, 70), "gray")
    alpha = [0.0] * 49
    alpha[0] = 1.0  # top-left cell of the 7x7 grid
    panel = attention_panel(image, np.array(alpha), 7)
    assert sum(panel.getpixel((3, 3))) > sum(panel.getpixel((66, 66)))


def test_attention_overlay_marks_the_attended_region():
    pixels = (torch.full((3, 28, 28), 0.5) - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / \
        torch.tensor(IMAGENET_STD).view(3, 1, 1)  # grey image, normalised
    alphas = torch.zeros(3, 49)
    alphas[:, 0] = 1.0  # every step attends to the top-left cell of the 7x7 grid
    strip = attention_overlay(pixels, "red square", alphas, grid_size=7)  # 2 words + <end>
    assert strip.shape == (3, 28 + LABEL_HEIGHT, 28 * 4) and 0 <= strip.min() and strip.max() <= 1
    assert torch.allclose(strip[:, :28, :28], torch.full((3, 28, 28), 0.5), atol=1 / 255)  # the de-normalised image
    first_word = strip[:, :28, 28:56]
    assert first_word[0, 0, 0] > first_word[0, -1, -1] + 0.2  # heat where attended, not in the far corner
    features_strip = attention_overlay(None, "red", alphas[:2], grid_size=7)
    assert features_strip.shape == (3, 64 + LABEL_HEIGHT, 64 * 3)
