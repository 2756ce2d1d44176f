"""trainer.training.validation helpers."""
import torch

from trainer.training.validation import _stack_rows


def test_stack_rows_pads_to_widest():
    stacked = _stack_rows([torch.ones(3, 4, 8), torch.ones(3, 4, 12)])
    assert stacked.shape == (3, 8, 12) and stacked[:, :4, 8:].sum() == 0
    assert _stack_rows([]) is None
