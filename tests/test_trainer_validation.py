"""trainer.validation helpers: attention overlays and the data-position bookkeeping of the loop."""
import torch

from trainer.loop import data_position
from trainer.train_state import Progress
from trainer.validation import IMAGENET_MEAN, IMAGENET_STD, _stack_rows, attention_overlay


def test_attention_overlay_marks_the_attended_region():
    pixels = (torch.full((3, 28, 28), 0.5) - IMAGENET_MEAN) / IMAGENET_STD  # grey image, normalised
    alphas = torch.zeros(3, 49)
    alphas[:, 0] = 1.0  # every word attends to the top-left cell of the 7x7 grid
    strip = attention_overlay(pixels, alphas, grid_size=7)
    assert strip.shape == (3, 28, 28 * 4) and 0 <= strip.min() and strip.max() <= 1
    assert torch.allclose(strip[:, :, :28], torch.full((3, 28, 28), 0.5), atol=1e-6)  # the de-normalised image
    first_word = strip[:, :, 28:56]
    assert first_word[0, 0, 0] > first_word[0, -1, -1]  # red where attended, not in the far corner
    features_strip = attention_overlay(None, alphas[:2], grid_size=7)
    assert features_strip.shape == (3, 64, 64 * 3)


def test_stack_rows_pads_to_widest():
    stacked = _stack_rows([torch.ones(3, 4, 8), torch.ones(3, 4, 12)])
    assert stacked.shape == (3, 8, 12) and stacked[:, :4, 8:].sum() == 0
    assert _stack_rows([]) is None


def test_data_position_rolls_over_finished_epoch():
    assert data_position(Progress(step=9, epoch=0, batch_in_epoch=9), batches_per_epoch=9).epoch == 1
    assert data_position(Progress(step=9, epoch=0, batch_in_epoch=9), batches_per_epoch=9).batch_in_epoch == 0
    assert data_position(Progress(step=4, epoch=2, batch_in_epoch=4), batches_per_epoch=9).epoch == 2
