"""What cells share, made once per experiment: learned tokens and adapters, synthetic sets, and their analysis.

EXP_DIR/styles/<dataset>[-class][<subset>]/   a style token (dataset style inversion) or per-class tokens
EXP_DIR/adapters/<dataset>[-class][<subset>]/ a LoRA adapter of the generator, dataset-wise or one per class
EXP_DIR/synthetic/<set>/                      synthetic sets, generated once at the largest volume any cell of
                                              the set's method needs; smaller volumes use the first N images of
                                              each class (nested subsets). <set> = <dataset><method suffix>
                                              [<subset>] (`set_name`): mnist5k, mnist5k-dsi-2shot-s3, ...
EXP_DIR/analysis/                             gap measures per synthetic set (gap-<set>.json) and its per-class
                                              recognition by a classifier of the real images (fidelity-<set>.json),
                                              on the features of the grid's model (`gap_model`, else the first of
                                              `models`) with the weights the cells start from; LEEP of the starting
                                              backbones (leep-<dataset>-<model>...)

<subset> is "-<K>shot-s<seed>" for what learns from the real images of a few-shot cell: the leakage rule of
`experiments.methods` (a token, adapter or image-to-image set learns only from the K-shot subset the cell's
seed draws, `data.few_shot`, the same images the cell trains on), and nothing for a full-data cell or a set
that learns nothing from real images (plain prompts: one set per dataset).

Each is made at a private temporary name and renamed into place whole (`io.made_once`): workers on several
nodes need no lock to agree (the first rename wins, a later one discards its copy); a file lock per thing
saves the second worker of a node the work, where locks work.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from synthbridge.errors import UserError
from synthbridge.experiments.config import ExperimentConfig
from synthbridge.experiments.methods import METHODS
from synthbridge.experiments.store import locked
from synthbridge.generation.sources import SOURCES
from synthbridge.io import made_once, read_json, safe_name, write_json


def subset_suffix(shots: int | None, seed: int | None) -> str:
    return f"-{shots}shot-s{seed}" if shots is not None else ""


def set_name(dataset: str, method: str = "plain", shots: int | None = None, seed: int | None = None) -> str:
    """The folder name of a synthetic set (`method`: a METHODS name)."""
    return safe_name(dataset) + METHODS.get(method).suffix + subset_suffix(shots, seed)


@dataclass(frozen=True)
class SetNeed:
    """A synthetic set some cells read: the dataset, the method that fits it to the real data, the real subset it
    learns from (`shots`, `seed`; None for the whole train split or for a method that learns nothing), at the
    largest volume any cell of the whole grid asks for with that method (smaller volumes are nested subsets)."""

    dataset: str
    method: str
    shots: int | None
    seed: int | None
    per_class: int

    @property
    def key(self) -> tuple:
        return (self.dataset, self.method, self.shots, self.seed)

    @property
    def name(self) -> str:
        return set_name(self.dataset, self.method, self.shots, self.seed)

    @property
    def style(self) -> bool:
        return METHODS.get(self.method).inversion == "dataset"


def set_key(cell) -> tuple:
    """(dataset, method, shots, seed) of the set a cell reads: a method that learns from real images learns from
    the cell's own subset (its shots, drawn by its seed); one that learns nothing is shared by the dataset."""
    from synthbridge.experiments.arms import ARMS

    arm = ARMS.get(cell.arm)
    if arm.fitting.learns_from_real and cell.shots is not None:
        return (cell.dataset, arm.method, cell.shots, cell.seed)
    return (cell.dataset, arm.method, None, None)


def ensure_style(cfg: ExperimentConfig, exp_dir: Path, dataset: str, *, per_class: bool = False,
                 shots: int | None = None, seed: int | None = None) -> Path:
    """Dataset style inversion (or per-class tokens), once per dataset and real subset (a finished folder is
    reused, an interrupted one continued). Its grid.png is drawn for a token of the whole train split only: the
    report's sample grids show the sets of a few-shot grid's first subset side by side."""
    name, extra = _learned(dataset, per_class, shots, seed)
    style_dir = exp_dir / "styles" / name
    done = "invert.json" if per_class else "learned_embeds.safetensors"

    def learn(folder: Path) -> None:
        if not (folder / done).exists():
            _needs_diffusion(cfg, "style inversion")
            from synthbridge.inversion import InvertConfig, invert

            resume = (folder / "checkpoint.pt").exists()  # an inversion interrupted earlier: continue it
            invert(InvertConfig.from_dict({**cfg.inversion, "dataset": dataset, "generator": cfg.generator,
                                           "out": str(folder), "data_root": cfg.data_root, "grid": shots is None, **extra}),
                   resume=resume)

    with locked(exp_dir / "styles" / f".{name}.lock"):
        return made_once(style_dir, learn)


def ensure_lora(cfg: ExperimentConfig, exp_dir: Path, dataset: str, *, per_class: bool = False,
                shots: int | None = None, seed: int | None = None) -> Path:
    """A LoRA adapter of the generator (or one per class), once per dataset and real subset."""
    name, extra = _learned(dataset, per_class, shots, seed)
    out = exp_dir / "adapters" / name
    _needs_diffusion(cfg, "LoRA adaptation")

    def learn(folder: Path) -> None:
        from synthbridge.adaptation import LoraTrainConfig, train_lora

        busy = folder.exists() and any(not p.name.startswith(".") for p in folder.iterdir())  # finished or interrupted
        train_lora(LoraTrainConfig.from_dict({**cfg.lora, "dataset": dataset, "generator": cfg.generator,
                                              "out": str(folder), "data_root": cfg.data_root, "grid": shots is None, **extra}),
                   resume=busy)

    with locked(exp_dir / "adapters" / f".{name}.lock"):
        return made_once(out, learn)


def _learned(dataset: str, per_class: bool, shots: int | None, seed: int | None) -> tuple[str, dict]:
    """(folder name, config fields) of a token or adapter learned from a dataset, per class or not, from the real
    subset (`shots`, `seed`) or the whole train split."""
    extra = {"per_class": True} if per_class else {}
    if shots is not None:
        extra.update(shots=shots, seed=seed)
    return safe_name(dataset) + ("-class" if per_class else "") + subset_suffix(shots, seed), extra


def _needs_diffusion(cfg: ExperimentConfig, what: str) -> None:
    if cfg.generator in SOURCES:
        raise UserError(f"{what} needs a diffusion generator, not the {cfg.generator!r} source; "
                        f"set generator to a diffusers folder or generator name")


@dataclass(frozen=True)
class Learned:
    """What a set's method learned from the real images before its images are drawn (None: nothing of that kind)."""

    style_dir: Path | None = None  # a style token, or per-class tokens (`invert`)
    lora_dir: Path | None = None  # a LoRA adapter, or one per class (`lora`)


def ensure_learned(cfg: ExperimentConfig, exp_dir: Path, need: SetNeed) -> Learned:
    """Whatever the set's method learns from its real subset first (tokens, adapters), each made once."""
    method = METHODS.get(need.method)
    subset = {"shots": need.shots, "seed": need.seed}
    style_dir = ensure_style(cfg, exp_dir, need.dataset, per_class=method.inversion == "class", **subset) \
        if method.inversion else None
    lora_dir = ensure_lora(cfg, exp_dir, need.dataset, per_class=method.lora == "class", **subset) \
        if method.lora else None
    return Learned(style_dir, lora_dir)


def ensure_set(cfg: ExperimentConfig, exp_dir: Path, need: SetNeed, learned: Learned) -> Path:
    """The set `need` names, drawn with what its method learned (`ensure_learned`), made once."""
    method = METHODS.get(need.method)
    style_dir, lora_dir = learned.style_dir, learned.lora_dir
    extra = {}
    if lora_dir is not None:
        extra["lora"] = str(lora_dir)
    if method.img2img:  # each image from a noised real image of the cell's own subset
        extra.update(img2img_fields(cfg, need))
    return ensure_synthetic(cfg, exp_dir, need.dataset, style_dir, need.per_class, name=need.name, extra=extra)


def img2img_fields(cfg: ExperimentConfig, need: SetNeed) -> dict:
    """The GenerateConfig fields of an image-to-image set: the grid's `img2img` (strength 0.5 unless it says), the
    method's own strengths where it has them (DA-Fusion's, Diff-Mix's), from the cell's own real subset (of another
    class, for Diff-Mix)."""
    method = METHODS.get(need.method)
    fields = {"strength": 0.5, **cfg.img2img, **({"strength": list(method.strengths)} if method.strengths else {}),
              "init_images": method.start, "shots": need.shots, "shots_seed": need.seed if need.seed is not None else 0}
    if method.start != "other":
        fields.pop("label_gamma", None)  # the grid's gamma labels the sets translated from another class only
    if method.start == "pairs" or method.drawn_by:  # denoised from whole inversions, or drawn by an editing or
        fields.pop("strength")  # variation model: no strength
    if method.start == "pairs":  # DDIM inversion pairs with DDIM sampling
        fields["scheduler"] = "ddim"
    if method.drawn_by:
        fields["generator"] = getattr(cfg, method.drawn_by)
    return fields


def ensure_synthetic(cfg: ExperimentConfig, exp_dir: Path, dataset: str, style_dir: Path | None, per_class: int,
                     *, name: str | None = None, extra: dict | None = None) -> Path:
    """A synthetic set of a dataset (with the token(s) of `style_dir`, or plain; `extra`: more GenerateConfig
    fields, e.g. an adapter or image-to-image) with `per_class` images, into synthetic/<name>."""
    name = name or set_name(dataset, "dsi" if style_dir is not None else "plain")
    out = exp_dir / "synthetic" / name
    if cfg.generator in SOURCES and (extra or style_dir is not None):
        raise UserError(f"the {cfg.generator!r} source draws fixed images; arms that fit the generator to "
                        f"the real data need a diffusion generator")

    def make(folder: Path) -> None:
        if cfg.generator in SOURCES:
            SOURCES.get(cfg.generator)(dataset=dataset, per_class=per_class, out=str(folder), data_root=cfg.data_root)
        else:
            from synthbridge.generation import GenerateConfig, generate

            generate(GenerateConfig.from_dict({**cfg.generation, "dataset": dataset, "generator": cfg.generator,
                                               "per_class": per_class, "out": str(folder), "data_root": cfg.data_root,
                                               "style": str(style_dir) if style_dir else None, **(extra or {})}))

    with locked(exp_dir / "synthetic" / f".{name}.lock"):
        return made_once(out, make)


def gap_config(cfg: ExperimentConfig, dataset: str, synthetic_dir: Path):
    """The GapConfig of a grid's set: the grid's feature model (`feature_model`) with the cells' pretrained /
    checkpoint rule and input size (from `train`), so the analysis fetches nothing training did not."""
    from synthbridge.gap import GapConfig
    from synthbridge.training import TrainConfig

    train = TrainConfig.from_dict(cfg.train)
    return GapConfig(dataset=dataset, synthetic=str(synthetic_dir), data_root=cfg.data_root, model=cfg.feature_model,
                     pretrained=train.pretrained, checkpoint=train.checkpoint, input_size=train.input_size)


def analysis_is_current(cfg: ExperimentConfig, exp_dir: Path, need: SetNeed, synthetic_dir: Path | None = None) -> bool:
    """Whether the set's gap measures exist, made with the feature model and weights this grid asks for."""
    out = exp_dir / "analysis" / f"gap-{need.name}.json"
    if not out.exists():
        return False
    dataset = need.dataset
    synthetic_dir = synthetic_dir or exp_dir / "synthetic" / need.name
    measured_with = lambda c: {k: c.get(k) for k in ("model", "pretrained", "checkpoint", "input_size")}
    return measured_with(read_json(out).get("config", {})) == measured_with(gap_config(cfg, dataset, synthetic_dir).to_dict())


def analyse_set(cfg: ExperimentConfig, exp_dir: Path, need: SetNeed, synthetic_dir: Path) -> None:
    """Gap measures of one synthetic set against the real train split (once per feature model and weights: a
    measure made with another `gap_model` is made again)."""
    if analysis_is_current(cfg, exp_dir, need, synthetic_dir):
        return
    dataset, style = need.dataset, need.style
    out = exp_dir / "analysis" / f"gap-{need.name}.json"
    config = gap_config(cfg, dataset, synthetic_dir)
    from synthbridge.gap import measure_gap

    result = measure_gap(config)
    recognition = result["recognition"]  # per class: what the report's per-class effects sit beside
    about = {"dataset": dataset, "style": style, "method": need.method, "shots": need.shots, "seed": need.seed}
    write_json(exp_dir / "analysis" / f"fidelity-{need.name}.json",
               {**about, "per_class": recognition["per_class"],
                "overall": recognition["overall"], "measured_by": recognition.get("classifier")})
    write_json(out, {**about, "synthetic": str(synthetic_dir.relative_to(exp_dir)), **result})


@functools.lru_cache(maxsize=16)
def _weights_id(path: Path, mtime_ns: int) -> str:
    """A weights file's identity (the start of its sha256), hashed once per process and file version."""
    from synthbridge.diffusion.pipeline import file_sha256

    return file_sha256(path)[:12]


def leep_before(exp_dir: Path, train_cfg) -> float | None:
    """LEEP of the backbone a cell starts from (its `TrainConfig`'s model, pretrained weights or checkpoint, input
    size), with its own source-task head, on the real train split; cached per dataset, model and weights. None,
    with nothing fetched, for a cell without pretrained weights or checkpoint (random init has no source head)."""
    if not train_cfg.pretrained and train_cfg.checkpoint is None:
        return None
    from synthbridge.transfer import pretrained_leep

    checkpoint = train_cfg.checkpoint
    weights = _weights_id(Path(checkpoint).resolve(), Path(checkpoint).stat().st_mtime_ns) if checkpoint else None
    name = "-".join([f"leep-{safe_name(train_cfg.dataset)}", safe_name(train_cfg.model)]
                    + ([f"{train_cfg.input_size}px"] if train_cfg.input_size else []) + ([weights] if weights else []))
    out = exp_dir / "analysis" / f"{name}.json"
    if out.exists():
        return read_json(out)["leep"]
    score = pretrained_leep(train_cfg.dataset, train_cfg.model, data_root=train_cfg.data_root,
                            pretrained=train_cfg.pretrained, checkpoint=checkpoint, input_size=train_cfg.input_size)
    if score is not None:
        write_json(out, {"dataset": train_cfg.dataset, "model": train_cfg.model, "leep": score,
                         "weights": {"checkpoint": checkpoint, "sha256": weights} if checkpoint else "pretrained",
                         "input_size": train_cfg.input_size})
    return score
