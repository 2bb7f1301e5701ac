"""The typed config of `synthbridge run`: a grid, loadable from YAML.

datasets x models x arms x synthetic volumes x synthetic-stage lengths x shots x seeds. Every key
has a default and a comment; unknown keys are errors that list the valid ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path

import yaml

from synthbridge.errors import UserError, check_types, reject_unknown_keys

GRID_KEYS = ("datasets", "models", "arms", "volumes", "volume_arms", "synthetic_steps", "shots", "seeds")
# Keys that change only the analysis or the report, never a cell's training or a set: a folder made with other
# values of these still resumes (`experiments.runner.open_experiment`).
ANALYSIS_KEYS = ("name", "analysis", "gap_model")


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "experiment"  # shown in the report
    datasets: tuple[str, ...] = ("mnist5k",)  # registry names or imagefolder:PATH
    models: tuple[str, ...] = ("mini_resnet",)  # mini_resnet, mini_vit or timm names
    arms: tuple[str, ...] = ("real", "mixed", "bridged", "bridged_dsi")  # see experiments.arms.ARMS
    volumes: tuple[int, ...] = (100,)  # synthetic images per class; the first is the headline volume
    volume_arms: tuple[str, ...] = ("bridged",)  # arms swept over all volumes (others use the first)
    synthetic_steps: tuple[int, ...] = ()  # extra lengths of the synthetic stage to try with bridged (headline cells)
    shots: tuple[int | None, ...] = (10,)  # real images per class; null = the whole train split
    seeds: tuple[int, ...] = (0, 1, 2)
    generator: str = "mini"  # a generator name ("mini"), a diffusers folder, a hub id, or a synthetic source ("render")
    editor: str | None = None  # an instruction-editing generator folder (InstructPix2Pix): the DiffuseMix arms' sets
    image_variation: str | None = None  # an image-variation generator folder (StableUnCLIPImg2Img): the GIF arms' sets
    generation: dict = field(default_factory=dict)  # GenerateConfig fields (guidance_scale, steps, templates, ...)
    inversion: dict = field(default_factory=dict)  # InvertConfig fields (steps, lr, ...) of style and per-class tokens
    lora: dict = field(default_factory=dict)  # LoraTrainConfig fields (rank, steps, lr, ...) of the LoRA arms
    img2img: dict = field(default_factory=dict)  # GenerateConfig fields of the image-to-image sets (strength: 0.5)
    train: dict = field(default_factory=dict)  # TrainConfig fields shared by all cells (real: {...}, synthetic_stage: {...})
    grids: tuple[dict, ...] = ()  # sub-grids, each overriding some GRID_KEYS above; empty: the one grid above
    analysis: bool = True  # gap measures per synthetic set and LEEP before/after the synthetic stage
    gap_model: str | None = None  # backbone of the gap measures (with train's pretrained/checkpoint); None: models[0]
    data_root: str | None = None  # where full-scale datasets live

    def sub_grids(self) -> list[ExperimentConfig]:
        """The grids to run: each sub-grid is this config with some grid keys replaced."""
        if not self.grids:
            return [self]
        grids = []
        for overrides in self.grids:
            if not isinstance(overrides, dict) or (bad := sorted(set(overrides) - set(GRID_KEYS))):
                raise UserError(f"experiment config: a grid may only set {', '.join(GRID_KEYS)}"
                                + (f" (got {', '.join(bad)})" if isinstance(overrides, dict) else ""))
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
            grids.append(replace(self, grids=(), **values))
        return grids

    def check(self) -> None:
        for grid in self.sub_grids():
            grid._check_one()

    @property
    def feature_model(self) -> str:
        """The backbone the gap measures use: `gap_model`, else the first model of the (first) grid."""
        return self.gap_model or self.sub_grids()[0].models[0]

    def training_dict(self) -> dict:
        """The config without the keys that change only analysis and reporting (ANALYSIS_KEYS): what finished
        cells and sets depend on."""
        return {k: v for k, v in self.to_dict().items() if k not in ANALYSIS_KEYS}

    def _check_one(self) -> None:
        from synthbridge.experiments.arms import ARMS

        for arm in self.arms + self.volume_arms:
            key = ARMS.get(arm).fitting.drawn_by
            if key is not None and getattr(self, key) is None:
                model = {"editor": "an InstructPix2Pix", "image_variation": "a StableUnCLIPImg2Img"}[key]
                raise UserError(f"experiment config: arm {arm!r} draws its set with a model the grid does not name; "
                                f"set `{key}:` to {model} folder, or leave the arm out")
        for name, values in (("datasets", self.datasets), ("models", self.models), ("arms", self.arms),
                             ("seeds", self.seeds), ("volumes", self.volumes), ("shots", self.shots)):
            if not values:
                raise UserError(f"experiment config: '{name}' needs at least one value")
        if any(not isinstance(v, int) or v < 1 for v in self.volumes + self.synthetic_steps):
            raise UserError("experiment config: volumes and synthetic_steps must be whole numbers > 0")
        if any(s is not None and (not isinstance(s, int) or s < 1) for s in self.shots):
            raise UserError("experiment config: shots must be whole numbers > 0 or null")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExperimentConfig:
        """Build and check a grid: unknown keys, every value's type (a list is a list of the declared kind) and the
        sections' own keys and types, before anything is made."""
        reject_unknown_keys(data, cls, "experiment config")
        check_types(cls, data, "experiment config")
        _check_sections(data)
        values = {}
        for f in fields(cls):
            if f.name in data:
                value = data[f.name]
                values[f.name] = tuple(value) if isinstance(value, list) and f.name != "grids" else value
        if "grids" in values:
            values["grids"] = tuple(values["grids"] or ())
        cfg = cls(**values)
        cfg.check()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict | None = None) -> ExperimentConfig:
        """Read a YAML grid: a file, or the name of a shipped preset (`smoke`, `embedded`, `study-full`, ...)."""
        file = Path(path)
        if file.is_file():
            text = file.read_text(encoding="utf-8")
        elif str(path) in preset_names():
            text = _preset(str(path)).read_text(encoding="utf-8")
        else:
            raise UserError(f"experiment config {str(path)!r} does not exist; pass a YAML file or a preset name "
                            f"({', '.join(preset_names())})")
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"{str(path)!r} is not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise UserError(f"{str(path)!r} must hold a mapping of config keys")
        data.pop("expected_compute", None)  # documentation only
        return cls.from_dict({**data, **(overrides or {})})


def _sections() -> dict:
    """The grid's sections and the config each one's keys belong to."""
    from synthbridge.adaptation.config import LoraTrainConfig
    from synthbridge.generation.config import GenerateConfig
    from synthbridge.inversion.config import InvertConfig
    from synthbridge.training.config import TrainConfig

    return {"train": TrainConfig, "generation": GenerateConfig, "img2img": GenerateConfig, "inversion": InvertConfig,
            "lora": LoraTrainConfig}


def _check_sections(data: dict) -> None:
    """Each section's keys and value types, as its command's config declares them (`train: {steps: ten}` is found
    here, not after the experiment folder and a synthetic set were made)."""
    for name, config_class in _sections().items():
        section = data.get(name) or {}
        reject_unknown_keys(section, config_class, f"experiment config '{name}'")
        check_types(config_class, section, f"experiment config '{name}'")
    for index, grid in enumerate(data.get("grids") or ()):
        if isinstance(grid, dict):
            check_types(ExperimentConfig, {k: v for k, v in grid.items() if k in GRID_KEYS}, f"grids[{index}]")


def _preset(name: str):
    return resources.files("synthbridge").joinpath("configs", f"{name}.yaml")


def preset_names() -> list[str]:
    """The presets shipped as package data (synthbridge/configs/*.yaml)."""
    folder = resources.files("synthbridge").joinpath("configs")
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


@contextmanager
def preset_path(name: str) -> Iterator[Path]:
    """A real file path for a shipped preset, for the duration of the block (importlib.resources)."""
    if name not in preset_names():
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(preset_names())}")
    with resources.as_file(_preset(name)) as path:
        yield path

