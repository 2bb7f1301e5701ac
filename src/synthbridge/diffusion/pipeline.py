"""The text-to-image model: find it, describe it, load it, and configure its scheduler.

In: a generator name (one a plugin registered, such as the embedded `mini`; a local diffusers folder;
or a hub id already in the local cache), a dtype and device, a scheduler name. Out: what identifies the
generator and its defaults (`GeneratorInfo`, read from config files before any weights are loaded) and
a diffusers pipeline ready to call: `StableDiffusionPipeline` for a Stable Diffusion 1.x/2.x folder (as it
always was), any other text-to-image family (SDXL, SD 3, PixArt, FLUX, ...) through diffusers'
`AutoPipelineForText2Image`, with that family's own scheduler and guidance defaults. Drawing images from
seeds is `diffusion.sampling`; learned styles are `diffusion.styles`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from synthbridge.errors import UserError
from synthbridge.io import bars_off
from synthbridge.registry import Registry

log = logging.getLogger(__name__)

SCHEDULERS = ("ddim", "dpm++", "euler", "pndm", "lcm")  # lcm: few-step sampling of an LCM-distilled UNet / LCM-LoRA
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")  # diffusers' schedulers' `timestep_spacing`
NATIVE_SCHEDULER = "native"  # keep the scheduler the folder ships (a flow-matching family's only choice)
SD_PIPELINE = "StableDiffusionPipeline"  # loaded as it always was; every other family via AutoPipelineForText2Image
# instruction-editing pipelines (an image and an instruction in, the edited image out: DiffuseMix), loaded by class
EDITING_PIPELINES = ("StableDiffusionInstructPix2PixPipeline",)
# image-variation pipelines (a CLIP image embedding in, an image out: GIF), loaded by class
VARIATION_PIPELINES = ("StableUnCLIPImg2ImgPipeline",)
DTYPES = ("fp32", "fp16", "bf16")
# Built-in sampler defaults: diffusers' own for Stable Diffusion (guidance 7.5, 50 steps) with a
# deterministic scheduler. A named generator brings its own (`NamedGenerator.defaults`), and a folder's
# synthbridge.json, when present, wins over both.
SD_DEFAULTS = {"guidance_scale": 7.5, "steps": 50, "scheduler": "ddim"}
GENERATOR_SETTINGS = "synthbridge.json"  # optional defaults stored in a generator folder
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
SCHEDULER_NAMES = {"DDIMScheduler": "ddim", "DPMSolverMultistepScheduler": "dpm++", "EulerDiscreteScheduler": "euler",
                   "PNDMScheduler": "pndm", "LCMScheduler": "lcm"}  # diffusers class -> `--scheduler` name
SCHEDULER_CLASSES = {name: cls for cls, name in SCHEDULER_NAMES.items()}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class NamedGenerator:
    """A generator a plugin ships under a short name (`--generator mini`)."""

    folder: Path  # the diffusers folder
    rebuild: str  # the command that makes the folder when it is missing
    defaults: dict  # sampler defaults when the folder records none


GENERATORS: Registry[NamedGenerator] = Registry("generator", plugins=True)


@dataclass
class GeneratorInfo:
    """What identifies a generator and what it defaults to, read from its folder's files (no weights)."""

    name: str  # a registered name ("mini"), the folder's absolute path, or the hub id
    folder: str  # the local folder it loads from (for a hub id: its snapshot in the local cache)
    fingerprint: str  # hash of the folder's file names, sizes and configs: changes when it is rebuilt
    defaults: dict  # guidance_scale, steps, scheduler (+ height/width) when the user gives none
    native_size: int  # the pixel size the UNet was trained for (sample_size x VAE scale factor)
    vae_scale_factor: int  # image pixels per latent pixel
    safety_checker: bool  # whether the pipeline blacks out images it flags as NSFW
    pipeline_class: str = SD_PIPELINE  # model_index.json's _class_name (the family)
    components: dict = field(default_factory=dict)  # component name -> class name, from model_index.json
    scheduler_class: str | None = None  # the class of the scheduler the folder ships

    @property
    def edits(self) -> bool:
        """An instruction-editing generator (`EDITING_PIPELINES`): it edits real images, it draws none from noise."""
        return self.pipeline_class in EDITING_PIPELINES

    @property
    def varies(self) -> bool:
        """An image-variation generator (`VARIATION_PIPELINES`): it draws from images' CLIP embeddings."""
        return self.pipeline_class in VARIATION_PIPELINES

    @property
    def is_stable_diffusion(self) -> bool:
        """A Stable Diffusion 1.x/2.x folder (loaded with StableDiffusionPipeline, SD's sampler defaults)."""
        return self.pipeline_class == SD_PIPELINE


def device_of(name: str | None) -> torch.device:
    """The device a diffusion command runs on: `name` (--device) when given, else the one accelerate picks for this
    process (its GPU under a launcher, cuda or mps when present, else the CPU)."""
    if name:
        return torch.device(name)
    from accelerate import PartialState

    return PartialState().device


def torch_dtype(name: str, device: torch.device) -> torch.dtype:
    """fp16/bf16 halve memory on a GPU; on the CPU they are slow or unsupported, so they are refused there."""
    if name not in TORCH_DTYPES:
        raise UserError(f"unknown dtype {name!r}; choose one of: {', '.join(TORCH_DTYPES)}")
    if name != "fp32" and device.type == "cpu":
        raise UserError(f"--dtype {name} needs a GPU, but this process runs on the CPU; use --dtype fp32 "
                        f"(or --device cuda on a machine with a GPU)")
    return TORCH_DTYPES[name]


def resolve_generator(name: str) -> tuple[Path | None, str | None]:
    """(local folder, hub id): exactly one is set. Missing folders are errors with the fix."""
    if name in GENERATORS:
        named = GENERATORS.get(name)
        if not (named.folder / "model_index.json").is_file():
            raise UserError(f"generator {name!r} is missing ({named.folder}); run `{named.rebuild}` "
                            f"first, or pass --generator FOLDER or a hub id")
        return named.folder, None
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "model_index.json").is_file():
            raise UserError(f"generator {name!r} is not a diffusers pipeline folder (no model_index.json); "
                            f"pass a folder saved with save_pretrained, a generator name, or a hub id")
        return path.resolve(), None
    if _HUB_ID.match(name) and not name.startswith((".", "~")):
        return None, name
    named = "".join(f"'{n}', " for n in GENERATORS.names())
    raise UserError(f"generator folder {name!r} does not exist; pass an existing diffusers folder, {named}"
                    f"or a hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5")


def locate_generator(name: str) -> tuple[Path, str]:
    """(local folder, id recorded for it). A hub id is fetched into (or found in) the local cache with
    diffusers' own downloader, so that everything after this works on a folder, offline."""
    folder, hub_id = resolve_generator(name)
    if folder is not None:
        return folder, name if name in GENERATORS else str(folder)
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # its "offline, trying the cache" notice would break the one-line error
    try:
        return Path(DiffusionPipeline.download(hub_id)), hub_id
    except Exception as exc:  # noqa: BLE001  (offline, unknown id, gated model: the generator cannot be used)
        raise UserError(f"cannot load generator {hub_id!r} from the local cache ({_first_line(exc)}); on a machine "
                        f"with network run `hf download {hub_id}`, or pass a local diffusers folder") from None
    finally:
        diffusers_logging.set_verbosity(verbosity)


def describe_generator(name: str, folder: Path) -> GeneratorInfo:
    """Identity and sampler defaults of the generator in `folder`, from its config files only."""
    settings: dict = {}
    if (folder / GENERATOR_SETTINGS).is_file():
        try:
            settings = json.loads((folder / GENERATOR_SETTINGS).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read {folder / GENERATOR_SETTINGS} ({exc}); fix or remove the file") from None
    try:
        model_index = _read_config(folder / "model_index.json")
        pipeline_class = str(model_index.get("_class_name") or SD_PIPELINE)
        denoiser = "unet" if _has_component(model_index, "unet") or pipeline_class == SD_PIPELINE else "transformer"
        denoiser_config = _read_config(folder / denoiser / "config.json")
        # a transformer family without sample_size (FLUX) uses diffusers' default of 128 latent pixels
        sample_size = int(denoiser_config["sample_size"] if denoiser == "unet" else denoiser_config.get("sample_size", 128))
        # as diffusers computes it: one factor of 2 per VAE block after the first
        vae_scale_factor = 2 ** (len(_read_config(folder / "vae" / "config.json")["block_out_channels"]) - 1)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"generator folder {str(folder)!r} lacks a readable denoiser/vae config ({_first_line(exc)}); "
                        f"pass a diffusers text-to-image folder (unet/ or transformer/, vae/)") from None
    scheduler_class = _scheduler_class(folder)
    defaults = dict(GENERATORS.get(name).defaults if name in GENERATORS else
                    SD_DEFAULTS if pipeline_class == SD_PIPELINE else family_defaults(pipeline_class, scheduler_class))
    # synthbridge.json (written by `synthbridge build-generator`) holds the sampler settings the generator
    # was tuned for under "defaults", with diffusers' names (num_inference_steps, scheduler class names).
    stored = settings.get("defaults", settings)
    for key, alias in (("guidance_scale", None), ("steps", "num_inference_steps"), ("scheduler", None),
                       ("height", None), ("width", None)):
        value = stored.get(key, stored.get(alias) if alias else None)
        if value is not None:
            defaults[key] = SCHEDULER_NAMES.get(value, value) if key == "scheduler" else value
    if defaults["scheduler"] not in (*SCHEDULERS, NATIVE_SCHEDULER):
        log.warning("generator default scheduler %r is not one of %s; using ddim", defaults["scheduler"], SCHEDULERS)
        defaults["scheduler"] = "ddim"
    components = {key: value[1] for key, value in model_index.items()
                  if isinstance(value, list) and len(value) == 2 and value[0] is not None}
    return GeneratorInfo(name=name, folder=str(folder), fingerprint=folder_fingerprint(folder), defaults=defaults,
                         native_size=sample_size * vae_scale_factor, vae_scale_factor=vae_scale_factor,
                         safety_checker=_has_component(model_index, "safety_checker"), pipeline_class=pipeline_class,
                         components=components, scheduler_class=scheduler_class)


def family_defaults(pipeline_class: str, scheduler_class: str | None) -> dict:
    """The sampler a non-SD family's own pipeline uses by default: its `__call__` defaults for guidance and steps
    (SDXL 5.0 / 50, SD 3 7.0 / 28, FLUX 3.5 / 28, PixArt 4.5 / 20) and the scheduler its folder ships."""
    import diffusers

    defaults = dict(SD_DEFAULTS)
    pipeline_type = getattr(diffusers, pipeline_class, None)
    parameters = inspect.signature(pipeline_type.__call__).parameters if pipeline_type is not None else {}
    for key, parameter in (("guidance_scale", "guidance_scale"), ("steps", "num_inference_steps")):
        if parameter in parameters and isinstance(parameters[parameter].default, (int, float)):
            defaults[key] = parameters[parameter].default
    defaults["scheduler"] = SCHEDULER_NAMES.get(scheduler_class, NATIVE_SCHEDULER)
    return defaults


def _scheduler_class(folder: Path) -> str | None:
    try:
        return _read_config(folder / "scheduler" / "scheduler_config.json").get("_class_name")
    except (OSError, ValueError):
        return None


def check_scheduler(info: GeneratorInfo, name: str) -> None:
    """Refuse a `--scheduler` the generator's own scheduler cannot be swapped for (a flow-matching family takes
    no DDPM-family sampler), from config files only: diffusers' own `compatibles` list of the folder's scheduler."""
    if name == NATIVE_SCHEDULER or info.scheduler_class is None or name not in SCHEDULER_CLASSES:
        return
    if name == "lcm":  # not in diffusers' `compatibles` lists, but it samples any DDPM-family (epsilon / v) UNet
        if "FlowMatch" in info.scheduler_class:
            raise UserError(f"--scheduler lcm does not apply to {info.pipeline_class} (its scheduler is "
                            f"{info.scheduler_class}); leave --scheduler out or pass --scheduler {NATIVE_SCHEDULER}")
        return
    import diffusers

    own = getattr(diffusers, info.scheduler_class, None)
    if own is None:
        return
    scheduler = own.from_pretrained(info.folder, subfolder="scheduler")
    if SCHEDULER_CLASSES[name] not in {cls.__name__ for cls in scheduler.compatibles}:
        raise UserError(f"--scheduler {name} does not apply to {info.pipeline_class} (its scheduler is "
                        f"{info.scheduler_class}); leave --scheduler out or pass --scheduler {NATIVE_SCHEDULER}")


def _read_config(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _first_line(exc: BaseException) -> str:
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return line if len(line) <= 160 else line[:157] + "..."


def folder_fingerprint(folder: Path) -> str:
    """A cheap identity for a model folder: every file's path and size, and the bytes of its small config
    files. Hashing multi-gigabyte weights on every run would cost more than generating a batch."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        relative = file.relative_to(folder).as_posix()
        size = file.stat().st_size
        digest.update(f"{relative}\0{size}\0".encode())
        if file.suffix in (".json", ".txt") and size < 1_000_000 and file.name != GENERATOR_SETTINGS:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _has_component(model_index: dict, name: str) -> bool:
    entry = model_index.get(name)
    return isinstance(entry, list) and len(entry) == 2 and entry[0] is not None


@contextlib.contextmanager
def quiet_loading(quiet: bool) -> Iterator[None]:
    """Hide diffusers' and transformers' loading bars (so a later error stays one line; and under `--no-progress`,
    whoever loads), then restore them."""
    if not quiet and not bars_off():
        yield
        return
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    were = [m.is_progress_bar_enabled() for m in (diffusers_logging, transformers_logging)]
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        for module, was in zip((diffusers_logging, transformers_logging), were):
            if was:
                module.enable_progress_bar()


def load_generator(info: GeneratorInfo, dtype: str, device: torch.device, quiet: bool = False):
    """The pipeline in `info.folder` on `device` in `dtype`, with its progress bar off: a Stable Diffusion folder
    through StableDiffusionPipeline, an instruction-editing or image-variation one through its own class, any
    other text-to-image family through AutoPipelineForText2Image."""
    import diffusers
    from diffusers import AutoPipelineForText2Image, StableDiffusionPipeline

    kwargs: dict = {"torch_dtype": torch_dtype(dtype, device)}  # `dtype=` only exists in recent diffusers
    loader = StableDiffusionPipeline if info.is_stable_diffusion else AutoPipelineForText2Image
    if info.edits or info.varies:
        loader = getattr(diffusers, info.pipeline_class)
    if (info.is_stable_diffusion or info.edits) and not info.safety_checker:
        # A folder saved without a safety checker (tiny and embedded generators) must be loaded with it
        # explicitly off; a folder that has one keeps it.
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        with quiet_loading(quiet), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = loader.from_pretrained(info.folder, **kwargs)
    except Exception as exc:  # noqa: BLE001  (file and format errors all mean: this generator cannot be used)
        raise UserError(f"cannot load generator {info.name!r} ({info.pipeline_class}) from {info.folder} "
                        f"({_first_line(exc)}); rebuild or re-download it") from None
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def denoiser(pipe) -> torch.nn.Module:
    """The pipeline's denoising network: `unet` (SD, SDXL) or `transformer` (SD 3, PixArt, FLUX)."""
    module = getattr(pipe, "unet", None)
    return module if module is not None else pipe.transformer


def set_scheduler(pipe, name: str, timestep_spacing: str | None = None) -> None:
    """Swap the pipeline's scheduler for `make_scheduler(name, its own config)`; `native` keeps the folder's own.
    `timestep_spacing` (leading, trailing, linspace) overrides the config's: "trailing" is what few-step samplers
    want (the last step starts from pure noise; diffusers' docs for LCM, TCD and Lightning models)."""
    if name != NATIVE_SCHEDULER:
        pipe.scheduler = make_scheduler(name, pipe.scheduler.config)
    if timestep_spacing is not None:
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, timestep_spacing=timestep_spacing)


def make_scheduler(name: str, config) -> object:
    """A sampling scheduler built from a noise schedule's config (betas, timestep spacing, offsets).

    All choices are deterministic given the initial latents and the generator: DDIM with eta=0, DPM-Solver++, Euler
    without churn, PNDM, and LCM (its multi-step sampling adds noise between steps, drawn from the image's own
    generator, so an image is still a function of its seed). Settings are only filled in where the loaded config
    lacks them, so a folder's own choices win: DDIM must not clip latents (clip_sample=False; latents are not bounded to [-1, 1])
    and ends on alpha_0 as SD does (set_alpha_to_one=False); PNDM skips its Runge-Kutta warmup as SD does.
    """
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, LCMScheduler, PNDMScheduler

    config = dict(config)
    builders = {
        "ddim": (DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": False}, {}),
        "dpm++": (DPMSolverMultistepScheduler, {}, {"algorithm_type": "dpmsolver++"}),
        "euler": (EulerDiscreteScheduler, {}, {}),
        "pndm": (PNDMScheduler, {"skip_prk_steps": True}, {}),
        "lcm": (LCMScheduler, {}, {}),  # as diffusers' LCM-LoRA docs build it: the config as it is
    }
    if name not in builders:
        raise UserError(f"unknown scheduler {name!r}; choose one of: {', '.join(builders)}")
    scheduler_class, if_absent, always = builders[name]
    overrides = {key: value for key, value in if_absent.items() if key not in config}
    return scheduler_class.from_config(config, **overrides, **always)


def generator_info(name: str) -> GeneratorInfo:
    """Identity and defaults of a generator from its folder's files; a missing generator is a UserError."""
    folder, recorded_name = locate_generator(name)
    return describe_generator(recorded_name, folder)


def open_generator(info: GeneratorInfo, dtype: str, device: torch.device, pipeline=None):
    """The pipeline of `info` on `device` in `dtype`. `pipeline`: one the caller already loaded for it."""
    if pipeline is None:
        return load_generator(info, dtype, device, quiet=True)
    wanted = torch_dtype(dtype, device)
    if denoiser(pipeline).dtype != wanted:
        raise UserError(f"the given pipeline is {denoiser(pipeline).dtype}, but the config asks for {dtype}; "
                        f"load it in {wanted} or change --dtype")
    return pipeline.to(device)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
