"""One door in: `create_model(name, num_classes, ...)`, built on timm.

Names are timm names (`resnet18`, `resnet50`, `vit_base_patch16_224`, ..., and those plugins register
with timm, such as the embedded `mini_resnet` / `mini_vit`). Weights come from: a local weights file a
plugin registered for the model (`LOCAL_WEIGHTS`), a local checkpoint (`checkpoint=`, safetensors or a
torch file read with weights_only=True), or timm's ImageNet weights where the machine can fetch them.
A missing or mismatched checkpoint is an error, never a fallback.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import timm
import torch

from synthbridge.errors import UserError
from synthbridge.plugins import load_plugins
from synthbridge.registry import Registry


@dataclass(frozen=True)
class LocalWeights:
    """Pretrained weights a plugin ships for a timm model name: the file, and the command that rebuilds it."""

    path: Path
    rebuild: str  # e.g. "synthbridge build-backbones"
    source_classes: int  # classes of the head the weights were trained with (for LEEP of the pretrained model)


LOCAL_WEIGHTS: Registry[LocalWeights] = Registry("local weights", plugins=True)


def source_classes(name: str) -> int:
    """The number of classes of a model's pretrained head: a plugin's record, or timm's pretrained config."""
    if name in LOCAL_WEIGHTS:
        return LOCAL_WEIGHTS.get(name).source_classes
    return int(timm.models.get_pretrained_cfg(name).num_classes or 1000)


WEIGHTS_ADVICE = "pass --checkpoint FILE or --no-pretrained (in a grid: train: {checkpoint: FILE} or {pretrained: false})"


def create_model(name: str, num_classes: int, *, pretrained: bool = True, checkpoint: str | Path | None = None,
                 input_size: int | None = None, advice: str = WEIGHTS_ADVICE, **kwargs) -> torch.nn.Module:
    """A timm model with a fresh `num_classes` head on top of pretrained features.

    Pretrained weights of the embedded models, and any `checkpoint`, are loaded strictly: every
    parameter but the classifier must be present and fit, or it is an error. `input_size` (pixels a side):
    the model is built for that input (timm's `img_size=` where the architecture takes it, so a ViT's position
    embeddings are resized; weights of another size are resampled) and its data config says that size.
    `advice`: what the error for unobtainable ImageNet weights tells the user to do (the caller's own flags).
    """
    load_plugins()  # plugins register their architectures with timm
    if not timm.is_model(name):
        local = f"{', '.join(LOCAL_WEIGHTS.names())}, " if LOCAL_WEIGHTS.names() else ""
        raise UserError(f"unknown model {name!r}; use {local}a timm model name (see timm.list_models()), "
                        f"or check the spelling")
    if input_size is not None and (not isinstance(input_size, int) or input_size < 1):
        raise UserError(f"--input-size must be a whole number > 0, got {input_size!r}")
    if checkpoint is None and pretrained and name in LOCAL_WEIGHTS:
        local = LOCAL_WEIGHTS.get(name)
        checkpoint = local.path
        if not checkpoint.is_file():
            raise UserError(f"the pretrained {name} weights are missing ({checkpoint}); "
                            f"run `{local.rebuild}` or pass --no-pretrained")
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise UserError(f"checkpoint {str(checkpoint)!r} does not exist; pass an existing .safetensors or .pth file")
        model = _build(name, input_size, pretrained=False, num_classes=num_classes, **kwargs)
        load_weights(model, checkpoint, name)
        return model
    try:
        return _build(name, input_size, pretrained=pretrained, num_classes=num_classes, **kwargs)
    except UserError:
        raise
    except Exception as exc:  # no network, no cached weights
        raise UserError(f"cannot get ImageNet weights for {name!r} ({_first_line(exc)}); {advice}") from None


def _build(name: str, input_size: int | None, **kwargs) -> torch.nn.Module:
    """timm.create_model, for `input_size` pixels where given: `img_size=` for architectures that take it (ViTs;
    others, such as CNNs, run at any size as they are); the model's pretrained config then records the size,
    so `data_config` (timm's resolve_data_config) gives transforms of that size."""
    if input_size is None:
        return timm.create_model(name, **kwargs)
    try:
        model = timm.create_model(name, img_size=input_size, **kwargs)
    except TypeError as exc:
        if "img_size" not in str(exc):
            raise
        model = timm.create_model(name, **kwargs)
    model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, input_size, input_size)}
    return model


def _first_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's first line, shortened at a word boundary (never cut mid-word)."""
    return _shorten(_nth_line(exc, 0), limit)


def _nth_line(exc: BaseException, n: int) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[min(n, len(lines) - 1)] if lines else type(exc).__name__


def _shorten(text: str, limit: int = 160) -> str:
    """`text` in at most `limit` characters, cut at a word boundary with ' ...' (never mid-word)."""
    import textwrap

    return textwrap.shorten(text, width=limit, placeholder=" ...")


def load_weights(model: torch.nn.Module, path: Path, name: str) -> None:
    """Load a safetensors or torch weights file (never unpickling objects) into `model`, all but its classifier."""
    state = _read_state(path)
    head = model.pretrained_cfg.get("classifier") or "fc"
    own = model.state_dict()
    is_head = lambda key: key.startswith(head + ".")
    state = _resample_position_embeddings(model, state, own)
    # A checkpoint for other classes brings another head: the model keeps its new one.
    state = {k: v for k, v in state.items() if not (is_head(k) and (k not in own or own[k].shape != v.shape))}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not fit
        raise UserError(f"{str(path)!r} does not fit model {name!r} ({_shorten(_nth_line(exc, 1))}); "
                        f"pass a checkpoint made for this architecture") from None
    missing = [k for k in missing if not is_head(k)]
    if missing or unexpected:
        sample = ", ".join((missing + unexpected)[:3])
        raise UserError(f"{str(path)!r} does not fit model {name!r} ({len(missing)} missing and {len(unexpected)} "
                        f"unexpected keys, e.g. {sample}); pass a checkpoint made for this architecture")


def _resample_position_embeddings(model: torch.nn.Module, state: dict, own: dict) -> dict:
    """Absolute position embeddings made for another input size (a ViT trained at 224 px, used at 96) resized to
    the model's token grid with timm's `resample_abs_pos_embed`; everything else as it is."""
    from timm.layers import resample_abs_pos_embed

    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if grid is None:
        return state
    prefix = 0 if getattr(model, "no_embed_class", False) else int(getattr(model, "num_prefix_tokens", 0))
    resized = dict(state)
    for key, value in state.items():
        if key.endswith("pos_embed") and key in own and value.ndim == 3 and value.shape != own[key].shape:
            resized[key] = resample_abs_pos_embed(value, new_size=list(grid), num_prefix_tokens=prefix)
    return resized


def _read_state(path: str | Path) -> dict:
    """A safetensors or torch weights file as a state dict (timm's load_state_dict, never unpickling objects)."""
    from timm.models import load_state_dict

    try:
        return load_state_dict(str(path), use_ema=False, weights_only=True)
    except Exception as exc:  # includes the unpickler refusing arbitrary objects
        raise UserError(f"cannot read checkpoint {str(path)!r} ({type(exc).__name__}: {_first_line(exc, 120)}); "
                        f"pass a safetensors file or a torch file of plain tensors") from None


def checkpoint_classes(name: str, path: str | Path) -> int | None:
    """The number of classes of the classifier a weights file holds for timm model `name` (None: it has none)."""
    load_plugins()
    pretrained_cfg = timm.models.get_pretrained_cfg(name)
    head = (pretrained_cfg.classifier if pretrained_cfg else None) or "fc"
    weight = _read_state(path).get(f"{head}.weight")
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else None


def data_config(model: torch.nn.Module) -> dict:
    """timm's input config (size, mean, std, interpolation, crop) for a model."""
    return timm.data.resolve_data_config({}, model=model)


@functools.lru_cache(maxsize=16)
def meta_model(name: str) -> torch.nn.Module | None:
    """timm model `name` built on the meta device (no memory, no weights: shapes only), or None if timm does not know
    it. Read-only: shared by every caller (convolutional, weights_mib, the plan's FLOP counts)."""
    load_plugins()
    if not timm.is_model(name):
        return None
    with torch.device("meta"):
        return timm.create_model(name, pretrained=False)


def convolutional(name: str) -> bool:
    """Whether timm model `name` is a convolutional network (more than one Conv2d: a ViT's patch embedding alone
    does not count): what decides channels_last."""
    model = meta_model(name)
    return model is not None and sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) > 1


def weights_mib(name: str) -> float | None:
    """The size of timm model `name`'s fp32 weights in MiB (None if timm does not know it or cannot build it on the
    meta device): what decides which weights a finished run keeps by default."""
    try:
        model = meta_model(name)
    except Exception:  # noqa: BLE001  (an architecture that needs real tensors to be built)
        return None
    return None if model is None else sum(p.numel() for p in model.parameters()) * 4 / 2**20


def input_size(name: str) -> int | None:
    """The side in pixels of the input a model's pretrained config asks for (None if timm does not know it),
    without building the model: what the training profile is chosen by."""
    load_plugins()
    if not timm.is_model(name):
        return None
    cfg = timm.models.get_pretrained_cfg(name)
    return int(min(cfg.input_size[1:])) if cfg is not None and cfg.input_size else None
