"""Image encoder: a ResNet-50 backbone (frozen, or trained from one stage on), its features standardised (BatchNorm
without affine weights, or LayerNorm), then a trainable 1x1 conv and pooling to a grid of region features."""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet50_Weights, resnet50

from .config import BACKBONE_STAGES, FEATURE_NORMS

RANDOM_BACKBONE_SEED = 0
MIN_IMAGE_SIZE = 32
# Channels of the output of each ResNet-50 stage before the last: a feature map with this many channels is that
# stage's output (a cached frozen prefix), and the encoder runs the stages after it.
STAGE_CHANNELS = {"layer1": 256, "layer2": 512, "layer3": 1024}
IMAGES = "images"


class Backbone(nn.Sequential):
    """ResNet-50 up to layer4, always in eval mode, so BatchNorm statistics never change. The stages before
    ``finetune_from`` are frozen and run without gradients; that stage and the later ones train ("none": all frozen)."""

    def __init__(self, resnet: nn.Module, finetune_from: str = "none"):
        layers = OrderedDict((name, module) for name, module in resnet.named_children() if name not in ("avgpool", "fc"))
        super().__init__(layers)
        if finetune_from != "none" and finetune_from not in BACKBONE_STAGES:
            raise ValueError(f"finetune_from must be 'none' or one of {BACKBONE_STAGES}, got {finetune_from!r}")
        self.finetune_from = finetune_from
        self.requires_grad_(False)
        for stage in self.trainable_stages():
            self.get_submodule(stage).requires_grad_(True)
        self.eval()

    def trainable_stages(self) -> tuple[str, ...]:
        if self.finetune_from == "none":
            return ()
        return BACKBONE_STAGES[BACKBONE_STAGES.index(self.finetune_from):]

    def train(self, mode: bool = True) -> "Backbone":
        return super().train(False)

    def forward(self, x: torch.Tensor, after: str | None = None, through: str = BACKBONE_STAGES[-1]) -> torch.Tensor:
        """Images, or the output of stage ``after`` (computed earlier by the same frozen modules) -> the output of stage
        ``through`` (default: layer4, the whole backbone)."""
        names = list(self._modules)
        start = 0 if after is None else names.index(after) + 1
        modules = list(self._modules.items())[start:names.index(through) + 1]
        trainable = self.trainable_stages()
        first_trained = next((i for i, (name, _) in enumerate(modules) if name in trainable), len(modules))
        with torch.no_grad():
            for _, module in modules[:first_trained]:
                x = module(x)
        for _, module in modules[first_trained:]:
            x = module(x)
        return x


def encoder_description(finetune_from: str) -> str:
    """How a model's backbone was trained, as model cards and inference reports state it."""
    if finetune_from == "none":
        return "frozen ResNet-50"
    return f"ResNet-50 fine-tuned from {finetune_from} (earlier stages frozen, BatchNorm statistics kept)"


def _resnet50_skeleton() -> nn.Module:
    """A randomly initialised ResNet-50 from a fixed seed; the global RNG is neither used nor changed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_BACKBONE_SEED)
        return resnet50(weights=None)


def _imagenet_state_dict() -> dict:
    try:
        return ResNet50_Weights.IMAGENET1K_V2.get_state_dict(progress=False, check_hash=True)
    except Exception as error:  # offline machines fail in many ways (URLError, socket errors, ...)
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(  # a setting to change, not a crash: the command line says it in one line
            "encoder_weights='imagenet': could not download the torchvision ImageNet ResNet-50 weights "
            f"({ResNet50_Weights.IMAGENET1K_V2.url}): {reason}. On an offline machine, download that file elsewhere "
            "and pass its local path as encoder_weights (a .pth or .safetensors ResNet-50 state dict), or use "
            "encoder_weights='none' for a frozen random backbone."
        ) from error


def _file_state_dict(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file {path} does not exist (expected a ResNet-50 state dict as "
                                ".safetensors or .pth, or encoder_weights='imagenet' | 'none')")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.suffix == ".pth":
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path} holds a {type(state).__name__}, expected a ResNet-50 state dict")
        return state
    raise ValueError(f"encoder weights file {path} must end in .safetensors or .pth, got {path.suffix!r}")


def build_backbone(weights: str, finetune_from: str = "none") -> Backbone:
    """ResNet-50 without avgpool/fc mapping (B,3,H,W) to (B,2048,H/32,W/32); weights: 'imagenet' | 'none' | path;
    frozen before the stage ``finetune_from`` ("none": all frozen)."""
    backbone = Backbone(_resnet50_skeleton(), finetune_from)
    if weights == "none":
        return backbone
    state = _imagenet_state_dict() if weights == "imagenet" else _file_state_dict(Path(weights))
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    expected = set(backbone.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(f"encoder weights {weights!r} are not a torchvision ResNet-50 state dict: "
                         f"{len(missing)} missing keys (e.g. {missing[:3]}), "
                         f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
    try:
        backbone.load_state_dict(state)
    except RuntimeError as error:  # right keys, wrong shapes
        raise ValueError(f"encoder weights {weights!r} do not fit a ResNet-50: {error}") from error
    return backbone


def backbone_fingerprint(backbone: nn.Module, through: str = BACKBONE_STAGES[-1]) -> str:
    """Short sha256 of the backbone's state dict (names, dtypes, shapes and values) from its first module through
    stage ``through`` (the default, layer4: the whole backbone)."""
    names = list(backbone._modules)
    kept = set(names[:names.index(through) + 1])
    digest = hashlib.sha256()
    for name, tensor in sorted(backbone.state_dict().items()):
        if name.split(".", 1)[0] not in kept:
            continue
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of each position of a (B, C, h, w) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Encoder(nn.Module):
    """Images (B,3,H,W) or backbone features (B,C,h,w) -> region features (B, grid*grid, feature_dim)."""

    def __init__(self, weights: str, backbone_channels: int = 2048, feature_dim: int = 256, grid_size: int = 7,
                 feature_norm: str = "batch", finetune_from: str = "none"):
        super().__init__()
        self.backbone_channels = backbone_channels
        self.backbone = build_backbone(weights, finetune_from)
        # Frozen features carry a large offset shared by every image (a random ResNet-50: mean ~20, per-image spread
        # ~1); standardising them keeps the attention and h0/c0 tanh units out of saturation. "batch": BatchNorm of the
        # backbone channels, without affine weights. It sits *before* the trainable projection: its input comes from a
        # frozen network, so the running statistics estimate a fixed distribution and eval mode sees what training saw
        # (after the projection they lagged its changing weights; see docs/ablation.md).
        # "layer": LayerNorm of each region's backbone vector (no batch state; it keeps the per-channel offset).
        if feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}, got {feature_norm!r}")
        if feature_norm == "layer":
            self.input_norm = ChannelLayerNorm(backbone_channels)
        else:
            # momentum None: a cumulative average, the best estimate of a fixed distribution
            self.input_norm = nn.BatchNorm2d(backbone_channels, affine=False, momentum=None)
        self.project = nn.Conv2d(backbone_channels, feature_dim, kernel_size=1)
        self.pool = nn.AdaptiveAvgPool2d(grid_size)
        self.channels_last = False
        self.train()  # a module starts in training mode: with this class's rule for the channels' BatchNorm

    def train(self, mode: bool = True) -> "Encoder":
        """While the backbone trains, the BatchNorm of its channels keeps the statistics estimated on the frozen
        backbone (stage 1) too: its input no longer has a fixed distribution, and frozen statistics normalise training
        and evaluation alike (a batch-statistics estimate would lag the changing weights)."""
        super().train(mode)
        if self.backbone.trainable_stages() and isinstance(self.input_norm, nn.BatchNorm2d):
            self.input_norm.train(False)
        return self

    def use_channels_last(self) -> "Encoder":
        """Keep the backbone's weights and image inputs channels-last (NHWC): faster convolutions on GPU tensor cores,
        equal results up to rounding."""
        self.backbone.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    def input_stage(self, x: torch.Tensor) -> str:
        """What ``x`` is: ``IMAGES``, or the ResNet-50 stage whose output it is (a cached feature map)."""
        stages = {3: IMAGES, **{channels: stage for stage, channels in STAGE_CHANNELS.items()},
                  self.backbone_channels: BACKBONE_STAGES[-1]}
        if x.dim() != 4 or x.shape[1] not in stages:
            raise ValueError(f"encoder input must be images (B,3,H,W), backbone features (B,{self.backbone_channels},h,w) "
                             f"or a ResNet-50 stage's output {STAGE_CHANNELS}, got shape {tuple(x.shape)}")
        stage = stages[x.shape[1]]
        trained = self.backbone.trainable_stages()
        if stage != IMAGES and trained and BACKBONE_STAGES.index(stage) >= BACKBONE_STAGES.index(trained[0]):
            raise ValueError(f"encoder input is the output of {stage} (a cached feature map), but the encoder trains "
                             f"{trained[0]} and later stages: give images or the output of an earlier, frozen stage")
        return stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stage = self.input_stage(x)
        if stage == IMAGES:
            if min(x.shape[2:]) < MIN_IMAGE_SIZE:
                raise ValueError(f"images must be at least {MIN_IMAGE_SIZE} px on each side, got {tuple(x.shape)}")
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x = self.backbone(x)
        elif stage != BACKBONE_STAGES[-1]:
            x = self.backbone(x, after=stage)
        return self.pool(self.project(self.input_norm(x))).flatten(2).transpose(1, 2)
