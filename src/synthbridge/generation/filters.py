"""`generate --filter`: keep only images that a classifier assigns to the class they were prompted for.

In: PIL images and the class names they were prompted for. Out: for each image, (accepted, score),
where score is the classifier's probability of the prompted class. Two kinds of classifier:

- CLIP zero-shot (full scale): `--filter-model CLIP_FOLDER`, a local transformers CLIPModel folder.
  Each image is compared with one text per class of the dataset ("a photo of a {class}, a type of
  {superclass}"); it is accepted when its prompted class has the highest similarity.
- a timm classifier (embedded world, or any trained checkpoint): `--filter-model RUN_DIR` (a folder
  written by `synthbridge train`: model.safetensors + config.json naming the model and its classes),
  or `--filter-model FILE.safetensors` (model name from the file's metadata or `--filter-arch`,
  classes = the dataset's). Accepted when the argmax is the prompted class.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image

from synthbridge.errors import UserError
from synthbridge.prompts import TEMPLATES, build_prompt


class ClassFilter(Protocol):
    classes: list[str]  # class names the classifier can name
    description: dict  # what is recorded in generation.json

    def __call__(self, images: Sequence[Image.Image], prompted: Sequence[str]) -> list[tuple[bool, float]]: ...


def _verdicts(probs: torch.Tensor, classes: list[str], prompted: Sequence[str]) -> list[tuple[bool, float]]:
    """probs: (N, C) over `classes`."""
    position = {name: i for i, name in enumerate(classes)}
    top = probs.argmax(dim=1).tolist()
    return [(top[row] == position[name], float(probs[row, position[name]])) for row, name in enumerate(prompted)]


class ClipZeroShot:
    """CLIP zero-shot classification over all classes of the dataset."""

    def __init__(self, folder: Path, classes: list[str], phrases: list[str], superclass: str, device: torch.device):
        from transformers import CLIPModel, CLIPProcessor

        try:
            self.model = CLIPModel.from_pretrained(str(folder)).to(device).eval()
            self.processor = CLIPProcessor.from_pretrained(str(folder))
        except Exception as exc:  # noqa: BLE001  (any load failure means the folder is unusable)
            raise UserError(f"cannot load CLIP filter model {str(folder)!r} ({str(exc).splitlines()[0][:160]}); "
                            f"pass a folder saved with CLIPModel/CLIPProcessor.save_pretrained") from None
        self.classes, self.device = list(classes), device
        template = TEMPLATES.get("superclass")
        texts = [build_prompt(template, phrase, superclass) for phrase in phrases]
        with torch.no_grad():
            tokens = self.processor(text=texts, return_tensors="pt", padding=True).to(device)
            self.text_features = _unit(_features(self.model.get_text_features(**tokens)))  # (C, D)
        self.description = {"kind": "clip-zero-shot", "model": str(folder), "texts": template}

    @torch.no_grad()
    def __call__(self, images: Sequence[Image.Image], prompted: Sequence[str]) -> list[tuple[bool, float]]:
        pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt").to(self.device)
        image_features = _unit(_features(self.model.get_image_features(**pixels)))  # (N, D)
        logits = self.model.logit_scale.exp() * image_features @ self.text_features.T  # (N, C)
        return _verdicts(logits.softmax(dim=1).cpu(), self.classes, prompted)


def _features(output) -> torch.Tensor:
    # transformers 5 may return a model output object instead of a bare tensor
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


class TimmClassifier:
    """A timm classifier with its own class list, fed with timm's eval transform for its input config."""

    def __init__(self, weights: Path, model_name: str, classes: list[str], device: torch.device):
        import timm
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        import synthbridge.models  # noqa: F401  (registers mini_resnet / mini_vit with timm)
        from synthbridge.models import data_config
        from synthbridge.training.loop import make_transform

        if not timm.is_model(model_name):
            raise UserError(f"filter model name {model_name!r} is not a timm model; pass --filter-arch NAME")
        model = timm.create_model(model_name, pretrained=False, num_classes=len(classes))
        try:
            model.load_state_dict(load_file(str(weights)))
        except (SafetensorError, OSError) as exc:
            raise UserError(f"cannot read filter weights {str(weights)!r} ({exc})") from None
        except RuntimeError as exc:
            raise UserError(f"filter weights {str(weights)!r} do not fit {model_name} with {len(classes)} classes "
                            f"({str(exc).splitlines()[0][:160]})") from None
        self.model = model.to(device).eval()
        self.transform = make_transform(data_config(model), "none", train=False)  # what `train` evaluates with
        self.classes, self.device = list(classes), device
        self.description = {"kind": "timm", "model": model_name, "weights": str(weights), "classes": len(classes)}

    @torch.no_grad()
    def __call__(self, images: Sequence[Image.Image], prompted: Sequence[str]) -> list[tuple[bool, float]]:
        batch = torch.stack([self.transform(im.convert("RGB")) for im in images]).to(self.device)
        return _verdicts(self.model(batch).float().softmax(dim=1).cpu(), self.classes, prompted)


def load_filter(path: str, arch: str | None, classes: list[str], phrases: list[str], superclass: str,
                device: torch.device) -> ClassFilter:
    """Pick the classifier kind from what `path` is (see the module docstring)."""
    location = Path(path).expanduser()
    if not location.exists():
        raise UserError(f"--filter-model {path!r} does not exist; pass a CLIP folder, a train run folder or a .safetensors file")
    if location.is_dir() and (location / "config.json").is_file():
        config = json.loads((location / "config.json").read_text(encoding="utf-8"))
        if config.get("model_type") == "clip" or "CLIPModel" in config.get("architectures", []):
            return ClipZeroShot(location, classes, phrases, superclass, device)
        if "classes" in config and (location / "model.safetensors").is_file():
            return _from_run(location / "model.safetensors", config, arch, device)
    if location.is_file() and location.suffix == ".safetensors":
        run_config = location.parent / "config.json"
        if run_config.is_file():
            config = json.loads(run_config.read_text(encoding="utf-8"))
            if "classes" in config:
                return _from_run(location, config, arch, device)
        return TimmClassifier(location, arch or _metadata_model(location), list(classes), device)
    raise UserError(f"--filter-model {path!r} is neither a CLIP folder (config.json with model_type clip), a "
                    f"`synthbridge train` run folder (config.json + model.safetensors), nor a .safetensors file")


def _from_run(weights: Path, config: dict, arch: str | None, device: torch.device) -> TimmClassifier:
    model_name = arch or config.get("config", {}).get("model") or _metadata_model(weights)
    return TimmClassifier(weights, model_name, list(config["classes"]), device)


def _metadata_model(weights: Path) -> str:
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        name = (f.metadata() or {}).get("model")
    if not name:
        raise UserError(f"{str(weights)!r} does not name its model; pass --filter-arch NAME (a timm model name)")
    return name
