"""The optimizer's parameter groups: the decoder and the encoder's head at ``optim.lr``; with ``model.finetune_from``,
the backbone's trained stages in a group of their own at ``optim.lr * optim.encoder_lr_factor`` (the LR schedule
scales both groups alike)."""
from __future__ import annotations


def parameter_groups(model, optim) -> list[dict]:
    """AdamW parameter groups of the unwrapped Captioner ``model``: one group while the backbone is frozen."""
    backbone = model.backbone_parameters()
    if not backbone:
        return [{"params": model.trainable_parameters()}]
    in_backbone = {id(parameter) for parameter in backbone}
    head = [parameter for parameter in model.trainable_parameters() if id(parameter) not in in_backbone]
    return [{"params": head}, {"params": backbone, "lr": optim.lr * optim.encoder_lr_factor}]
