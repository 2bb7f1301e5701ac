"""Stage of the flow: generation. Prompts and a text-to-image model in, a synthetic image folder out.

    from synthbridge.generation import GenerateConfig, generate
    summary = generate(GenerateConfig(out="S/", dataset="mnist5k", generator="mini", per_class=100))
    images = synthbridge.data.load_synthetic("S/", bundle.classes)

Modules: `config` (GenerateConfig, what defines a set), `folder` (the folder on disk: resume, shards,
manifest merge), `filters` (--filter classifiers), `adapted` (real start images for image-to-image, per-class
LoRA adapters and tokens), `generate` (the numbered steps). Loading the
pipeline, schedulers, styles and rendering from seeds live in `synthbridge.diffusion`.
"""

from synthbridge.generation.config import SET_KEYS, GenerateConfig, parse_shard
from synthbridge.generation.generate import generate, image_seed, regenerate_image

__all__ = ["GenerateConfig", "SET_KEYS", "generate", "image_seed", "parse_shard", "regenerate_image"]
