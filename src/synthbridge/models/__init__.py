"""Stage: models. One door in: `create_model(name, num_classes, ...)`, built on timm.

Names are timm names (`resnet18`, `resnet50`, `vit_base_patch16_224`, ...) or the embedded
`mini_resnet` / `mini_vit`. Weights come from: the embedded safetensors files, a local checkpoint
(`checkpoint=`, safetensors or a torch file read with weights_only=True), or timm's ImageNet weights
where the machine can fetch them. A missing or mismatched checkpoint is an error, never a fallback.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch

from synthbridge.errors import UserError
from synthbridge.models.embedded import EMBEDDED_MODELS, IMAGE_SIZE, weights_file


def list_models() -> list[str]:
    return list(EMBEDDED_MODELS)


def create_model(name: str, num_classes: int, *, pretrained: bool = True, checkpoint: str | Path | None = None,
                 **kwargs) -> torch.nn.Module:
    """A timm model with a fresh `num_classes` head on top of pretrained features."""
    if not timm.is_model(name):
        raise UserError(f"unknown model {name!r}; use {' or '.join(EMBEDDED_MODELS)}, a timm model name "
                        f"(see timm.list_models()), or check the spelling")
    overlay = None
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise UserError(f"checkpoint {str(checkpoint)!r} does not exist; pass an existing .safetensors or .pth file")
        overlay, pretrained = dict(file=str(checkpoint)), True
    elif pretrained and name in EMBEDDED_MODELS and not weights_file(name).is_file():
        raise UserError(f"the embedded {name} weights are missing ({weights_file(name)}); "
                        f"run `synthbridge build-backbones` or pass --no-pretrained")
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=num_classes, pretrained_cfg_overlay=overlay,
                                 **kwargs)
    except RuntimeError as exc:  # state dict does not fit the architecture
        source = str(checkpoint) if checkpoint else f"the pretrained weights of {name}"
        raise UserError(f"{source} do not fit model {name!r} ({str(exc).splitlines()[0][:200]}); "
                        f"pass a checkpoint made for this architecture") from None
    except (OSError, ValueError) as exc:  # no network, no cached weights, unreadable file
        if checkpoint is not None:
            raise UserError(f"cannot read checkpoint {str(checkpoint)!r} ({exc}); pass a safetensors or torch weights file") from None
        raise UserError(f"cannot get ImageNet weights for {name!r} ({str(exc).splitlines()[0][:160]}); "
                        f"pass --checkpoint FILE or --no-pretrained") from None


def data_config(model: torch.nn.Module) -> dict:
    """timm's input config (size, mean, std, interpolation, crop) for a model."""
    return timm.data.resolve_data_config({}, model=model)


__all__ = ["EMBEDDED_MODELS", "IMAGE_SIZE", "create_model", "data_config", "list_models", "weights_file"]
