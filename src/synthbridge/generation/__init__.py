"""Stage 3 of the flow: generation. Prompts and a text-to-image model in, a synthetic image folder out.

    from synthbridge.generation import GenerateConfig, generate
    summary = generate(GenerateConfig(out="S/", dataset="mnist5k", generator="mini", per_class=100))
    images = synthbridge.data.load_synthetic("S/", bundle.classes)

Modules: `config` (GenerateConfig, what defines a set), `pipeline` (load the diffusers pipeline,
scheduler, style; render from seeds), `folder` (the folder on disk: resume, shards, manifest merge),
`filters` (--filter classifiers), `generate` (the numbered steps), `cli` (`synthbridge generate`),
`tiny` (random tiny SD pipelines for tests and benchmarks).
"""

from __future__ import annotations

from synthbridge.generation.config import GENERATOR_DEFAULTS, SCHEDULERS, SET_KEYS, GenerateConfig, parse_shard
from synthbridge.generation.generate import generate, image_seed, regenerate_image

__all__ = ["GENERATOR_DEFAULTS", "GenerateConfig", "SCHEDULERS", "SET_KEYS", "generate", "image_seed", "parse_shard",
           "regenerate_image"]
