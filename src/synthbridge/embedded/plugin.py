"""The embedded world as a plugin: importing this module registers it with the product's registries.

Named by the entry point `synthbridge.plugins: embedded` in pyproject.toml; `synthbridge.plugins`
imports it before a registry's first lookup.
"""

from synthbridge.diffusion.pipeline import GENERATORS, NamedGenerator
from synthbridge.embedded import datasets  # noqa: F401  (registers mnist5k and digits)
from synthbridge.embedded.assets import GENERATOR_DIR
from synthbridge.embedded.models import EMBEDDED_MODELS, NUM_SOURCE_CLASSES, weights_file
from synthbridge.generation.sources import SOURCES
from synthbridge.models import LOCAL_WEIGHTS, LocalWeights

for _name in EMBEDDED_MODELS:
    LOCAL_WEIGHTS.register(_name)(LocalWeights(weights_file(_name), "synthbridge build-backbones", NUM_SOURCE_CLASSES))

# The mini generator is trained for low guidance; its folder's synthbridge.json, when present, wins.
GENERATORS.register("mini")(NamedGenerator(GENERATOR_DIR, "synthbridge build-generator",
                                           {"guidance_scale": 3.0, "steps": 50, "scheduler": "ddim"}))


@SOURCES.register("render")
def render(dataset: str, per_class: int, out: str, data_root: str | None = None) -> None:
    """Font digits (`synthbridge render`) as a grid's synthetic source."""
    from synthbridge.embedded.render import RenderConfig, render_folder

    render_folder(RenderConfig(dataset=dataset, per_class=per_class, out=out))
