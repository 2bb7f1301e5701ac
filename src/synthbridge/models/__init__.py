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
    """A timm model with a fresh `num_classes` head on top of pretrained features.

    Pretrained weights of the embedded models, and any `checkpoint`, are loaded strictly: every
    parameter but the classifier must be present and fit, or it is an error.
    """
    if not timm.is_model(name):
        raise UserError(f"unknown model {name!r}; use {' or '.join(EMBEDDED_MODELS)}, a timm model name "
                        f"(see timm.list_models()), or check the spelling")
    if checkpoint is None and pretrained and name in EMBEDDED_MODELS:
        checkpoint = weights_file(name)
        if not checkpoint.is_file():
            raise UserError(f"the embedded {name} weights are missing ({checkpoint}); "
                            f"run `synthbridge build-backbones` or pass --no-pretrained")
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise UserError(f"checkpoint {str(checkpoint)!r} does not exist; pass an existing .safetensors or .pth file")
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
        load_weights(model, checkpoint, name)
        return model
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=num_classes, **kwargs)
    except Exception as exc:  # no network, no cached weights
        raise UserError(f"cannot get ImageNet weights for {name!r} ({str(exc).splitlines()[0][:160]}); "
                        f"pass --checkpoint FILE or --no-pretrained") from None


def load_weights(model: torch.nn.Module, path: Path, name: str) -> None:
    """Load a safetensors or torch weights file (never unpickling objects) into `model`, all but its classifier."""
    from timm.models import load_state_dict

    try:
        state = load_state_dict(str(path), use_ema=False, weights_only=True)
    except Exception as exc:  # includes the unpickler refusing arbitrary objects
        raise UserError(f"cannot read checkpoint {str(path)!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
                        f"pass a safetensors file or a torch file of plain tensors") from None
    head = model.pretrained_cfg.get("classifier") or "fc"
    own = model.state_dict()
    is_head = lambda key: key.startswith(head + ".")
    # A checkpoint for other classes brings another head: the model keeps its new one.
    state = {k: v for k, v in state.items() if not (is_head(k) and (k not in own or own[k].shape != v.shape))}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not fit
        raise UserError(f"{str(path)!r} does not fit model {name!r} ({str(exc).splitlines()[1].strip()[:160]}); "
                        f"pass a checkpoint made for this architecture") from None
    missing = [k for k in missing if not is_head(k)]
    if missing or unexpected:
        sample = ", ".join((missing + unexpected)[:3])
        raise UserError(f"{str(path)!r} does not fit model {name!r} ({len(missing)} missing and {len(unexpected)} "
                        f"unexpected keys, e.g. {sample}); pass a checkpoint made for this architecture")


def data_config(model: torch.nn.Module) -> dict:
    """timm's input config (size, mean, std, interpolation, crop) for a model."""
    return timm.data.resolve_data_config({}, model=model)


__all__ = ["EMBEDDED_MODELS", "IMAGE_SIZE", "create_model", "data_config", "list_models", "weights_file"]
