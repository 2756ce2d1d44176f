"""Captioner: encoder + attention LSTM decoder, with decoding and safetensors save/load."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .beam_search import Generation, beam_search, greedy_search
from .config import CaptionerConfig
from .decoder import Decoder
from .decoding_options import DecodingOptions
from .encoder import Encoder
from .sampling import sample_search
from .word_rules import WordRules

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CaptionerOutput(NamedTuple):
    """logits (N, T-1, V): logits[:, t] predicts captions[..., t+1]; alphas (N, T-1, R) attention weights."""

    logits: torch.Tensor
    alphas: torch.Tensor


class Captioner(nn.Module):
    """Show, Attend and Tell: ResNet-50 (frozen or fine-tuned) -> region features -> attention -> LSTMCell -> words."""

    def __init__(self, config: CaptionerConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.encoder_weights, config.backbone_channels, config.feature_dim, config.grid_size,
                               config.feature_norm, config.finetune_from)
        self.decoder = Decoder(config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B,3,H,W) or backbone features (B,2048,h,w) -> region features (B, 49, feature_dim)."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor, captions: torch.Tensor, teacher_forcing_ratio: float = 1.0) -> CaptionerOutput:
        """Score captions (B, T) or (B, K, T); the K captions of an image share one encoder pass (rows image-major)."""
        if captions.dim() not in (2, 3) or captions.shape[0] != x.shape[0]:
            raise ValueError(f"captions must be (B, T) or (B, K, T) with B={x.shape[0]}, got {tuple(captions.shape)}")
        features = self.encode(x)
        if captions.dim() == 3:
            features = features.repeat_interleave(captions.shape[1], dim=0)
            captions = captions.flatten(0, 1)
        logits, alphas = self.decoder(features, captions, teacher_forcing_ratio)
        return CaptionerOutput(logits, alphas)

    @torch.no_grad()
    def generate(self, x: torch.Tensor, options: DecodingOptions | None = None, seeds: list[int] | None = None,
                 **changes) -> Generation:
        """Caption images or backbone features: ``generate(x, beam_size=5, max_len=16)`` or ``generate(x, options)``
        (``DecodingOptions``; keyword arguments override its fields). beam_size=1 is greedy search; with n_best > 1
        the rows are image-major (row ``i * n_best + k``: the k-th best caption of image i). When sampling, image i
        draws from a generator seeded ``seeds[i]`` (default ``options.seed + i``). Runs in eval mode, then restores
        it.

        Decodes in the model's dtype: after ``model.to(torch.bfloat16)`` the matrix products run in bfloat16 (x is cast
        to it), while attention energies, log-probabilities and the returned scores and alphas stay float32."""
        options = (options or DecodingOptions()).replace(**changes)
        config = self.config
        rules = WordRules(options, config.bos_id, config.pad_id, config.eos_id, x.device) \
            if options.has_word_rules or options.sample else None
        was_training = self.training
        self.eval()
        try:
            features = self.encode(x.to(self.decoder.output.weight.dtype))
            if options.sample:
                seeds = seeds if seeds is not None else [options.seed + i for i in range(len(features))]
                return sample_search(self.decoder, features, options, rules, seeds, config.bos_id, config.eos_id,
                                     config.pad_id)
            if options.beam_size == 1:
                return greedy_search(self.decoder, features, options.max_len, config.bos_id, config.eos_id,
                                     config.pad_id, options.length_penalty, rules)
            return beam_search(self.decoder, features, options.beam_size, options.max_len, config.bos_id,
                               config.eos_id, config.pad_id, options.length_penalty, rules, options.n_best)
        finally:
            self.train(was_training)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the frozen stages' of the backbone (all of it unless ``config.finetune_from``)."""
        return [p for p in self.parameters() if p.requires_grad]

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters of the backbone (the stages from ``config.finetune_from`` on; none by default)."""
        return [p for p in self.encoder.backbone.parameters() if p.requires_grad]

    def save_pretrained(self, directory: str | Path) -> None:
        """Write config.json and model.safetensors (the whole state dict, frozen backbone included)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory / CONFIG_NAME)
        state = {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> "Captioner":
        """Load a save_pretrained directory; builds a random backbone first, so it never downloads or unpickles."""
        directory = Path(directory)
        config = CaptionerConfig.load(directory / CONFIG_NAME)
        weights_path = directory / WEIGHTS_NAME
        if not weights_path.is_file():
            raise FileNotFoundError(f"{weights_path} does not exist (save_pretrained writes {WEIGHTS_NAME})")
        model = cls(dataclasses.replace(config, encoder_weights="none"))
        model.config = config  # keep recording where the backbone weights came from
        state = load_file(str(weights_path))
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise ValueError(f"{weights_path} does not match the model described by {directory / CONFIG_NAME}: "
                             f"{error}") from error
        return model.to(map_location)
