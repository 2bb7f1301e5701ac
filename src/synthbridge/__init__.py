"""synthbridge: make text-to-image synthetic images useful for transfer learning.

The study runs as a chain of stages, one module each:
data -> prompts -> generation -> (inversion) -> training -> evaluation -> reporting.

The Python API has the commands' names (`synthbridge.api`): `generate`, `invert`, `lora`, `train`, `run`, `report`,
`advise`, with their typed configs (`GenerateConfig`, `InvertConfig`, `LoraTrainConfig`, `TrainConfig`,
`ExperimentConfig`) and `UserError`. They load on first use, so `import synthbridge` stays light.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "generate": "synthbridge.api", "invert": "synthbridge.api", "lora": "synthbridge.api",
    "train": "synthbridge.api", "run": "synthbridge.api", "report": "synthbridge.api", "advise": "synthbridge.api",
    "GenerateConfig": "synthbridge.generation", "InvertConfig": "synthbridge.inversion",
    "LoraTrainConfig": "synthbridge.adaptation", "TrainConfig": "synthbridge.training",
    "ExperimentConfig": "synthbridge.experiments", "UserError": "synthbridge.errors",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'synthbridge' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])


__all__ = ["__version__", *_EXPORTS]
