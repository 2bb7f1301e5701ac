"""Where the embedded assets live, and how to load them in plain diffusers / timm code."""

from __future__ import annotations

from pathlib import Path

from synthbridge.embedded.models import EMBEDDED_MODELS, weights_file

ASSET_DIR = Path(__file__).resolve().parent / "assets"
GENERATOR_DIR = ASSET_DIR / "generator"


def describe_assets() -> dict:
    info = {}
    for name in EMBEDDED_MODELS:
        path = weights_file(name)
        info[name] = {"path": str(path), "exists": path.is_file(), "build": "synthbridge build-backbones",
                      "usage": f"import synthbridge.embedded.models, timm; "
                               f"timm.create_model('{name}', pretrained=True, num_classes=N)"}
    info["generator"] = {"path": str(GENERATOR_DIR), "exists": (GENERATOR_DIR / "model_index.json").is_file(),
                         "build": "synthbridge build-generator",
                         "usage": f"diffusers.StableDiffusionPipeline.from_pretrained('{GENERATOR_DIR}')"}
    return info
