"""Training options that change speed, not results: the AdamW kernel, torch.compile of the decoder's recurrent step,
channels-last images. Each is tested for equality with the default (tests/test_trainer_speed_options.py)."""
from __future__ import annotations

import torch

from trainer.config.schema import TrainConfig

# optim.implementation -> torch.optim.AdamW keyword arguments
ADAMW_KERNELS = {"auto": {}, "for_loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def build_optimizer(config: TrainConfig, parameters) -> torch.optim.AdamW:
    """AdamW over ``parameters`` with the ``optim`` section's hyper-parameters and kernel."""
    optim = config.optim
    return torch.optim.AdamW(parameters, lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps,
                             weight_decay=optim.weight_decay, **ADAMW_KERNELS[optim.implementation])


def apply_speed_options(config: TrainConfig, model) -> None:
    """Set up the unwrapped Captioner for ``train.compile`` and ``train.channels_last`` (before accelerator.prepare)."""
    if config.train.channels_last:
        model.encoder.use_channels_last()
    if config.train.compile:
        compile_recurrent_step(model.decoder)


def compile_recurrent_step(decoder, backend: str = "inductor") -> None:
    """torch.compile the decoder's per-step unit (attention + LSTM cell), the kernels every training step repeats
    T times; dynamic, as the active rows shrink step by step when captions end, so one graph serves every count."""
    decoder.recurrent_step = torch.compile(decoder.recurrent_step, dynamic=True, backend=backend)
