"""The typed config of `synthbridge generate`: one frozen dataclass, and the identity of the set it makes.

Fields left `None` (guidance scale, steps, scheduler, image size) are filled from the generator:
its folder's `synthbridge.json` when it has one, else built-in defaults (`diffusion.pipeline`).
The resolved values are what `generation.json` records and what a rerun is compared against.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from synthbridge.diffusion.pipeline import DTYPES, NATIVE_SCHEDULER, SCHEDULERS, TIMESTEP_SPACINGS
from synthbridge.errors import UserError, reject_unknown_keys


@dataclass(frozen=True)
class SetIdentity:
    """What decides the images of a synthetic set: generation.json's "set", compared on every rerun into the folder
    (it must match, or --overwrite), and, per image, its manifest line (`line_fields`). Built by
    `generate.set_identity` from a resolved config.

    `per_class` is deliberately absent: a larger value extends the set (the volume sweeps of the study), a smaller one
    leaves it as it is. Shard, process count and environment are absent because they do not change any image. Batch
    size and device are absent too: they change images only by float rounding (at most one 8-bit level in a few
    pixels; see diffusion.sampling.render), and each manifest line records the batch size that reproduces it bit for
    bit. The storage fields (format, quality, saved size) are part of it: they change the files, not the drawing.
    `lora` (the adapter folder's path) is recorded but not compared: the adapter is its weights' hash."""

    dataset: str
    classes: list
    generator: str
    generator_fingerprint: str
    templates: list
    negative_prompt: str | None
    style_token: str | dict | None
    style_sha256: str | None
    guidance_scale: float
    steps: int
    scheduler: str
    timestep_spacing: str | None
    height: int
    width: int
    dtype: str
    seed: int
    blank_threshold: float
    filter: bool
    filter_model: str | None
    filter_arch: str | None
    max_retries: int
    image_format: str
    quality: int | None
    save_size: int | None
    lora: str | None = dataclasses.field(default=None, metadata={"compared": False})
    lora_sha256: str | None = None
    lora_scale: float | None = None
    init_images: str | None = None
    strength: float | list | None = None  # one strength, or the set each image draws its own from (DA-Fusion)
    label_gamma: float | None = None  # --init-images other: the target class's soft-label weight is strength^gamma
    edits: list | None = None  # an instruction-editing generator's prompts (DiffuseMix)
    fractal_blend: float | None = None  # its hybrids' blend with a fractal image
    variation_noise: float | None = None  # an image-variation generator's embedding perturbation (GIF)
    shots: int | None = None
    shots_seed: int | None = None

    def record(self) -> dict:
        """generation.json's "set" (as it reads back from JSON: lists, not tuples)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def line_fields(self, class_name: str, index: int, strength: float | None = None) -> dict:
        """What a manifest line repeats of the set for its image (its template, its class's token; image-to-image:
        the image's own strength)."""
        token = self.style_token[class_name] if isinstance(self.style_token, dict) else self.style_token
        fields = {key: getattr(self, key) for key in LINE_KEYS}
        fields.update(template=self.templates[index % len(self.templates)], style_token=token)
        if strength is not None:
            fields.update(init_images=self.init_images, strength=strength)
        return fields


# The fields a rerun must match (every field of SetIdentity but the recorded-only ones).
SET_KEYS = tuple(f.name for f in dataclasses.fields(SetIdentity) if f.metadata.get("compared", True))
# The set's fields every manifest line repeats (the image's own template and token are added per line).
LINE_KEYS = ("negative_prompt", "guidance_scale", "steps", "scheduler", "timestep_spacing", "height", "width",
             "generator", "style_sha256", "dtype", "image_format", "quality", "save_size", "lora", "lora_sha256",
             "lora_scale")
# --init-images: where image-to-image starts from: "real", a training image of the image's own class (Real Guidance,
# DA-Fusion, Diff-Aug); "other", a training image of another class of the set, translated toward the image's class and
# labelled softly (Diff-Mix); "pairs", two real images of its class inverted to noise (DDIM inversion) and spherically
# interpolated, the result denoised with the image's prompt (Diff-II)
INIT_IMAGES = ("real", "other", "pairs")
# --image-format -> (PIL format name, file suffix); all three are read by torchvision's ImageFolder, by
# `datasets.load_dataset("imagefolder")` and by synthbridge.data.load_synthetic.
IMAGE_FORMATS = {"png": ("PNG", ".png"), "webp": ("WEBP", ".webp"), "jpg": ("JPEG", ".jpg")}


@dataclass(frozen=True)
class GenerateConfig:
    # --- what to generate
    out: str  # output folder: <class folder>/<index>.<png|webp|jpg>, manifest.jsonl, generation.json
    dataset: str = "mnist5k"  # registry name or imagefolder:PATH (gives class names, phrases, superclass)
    generator: str = "mini"  # "mini" (embedded), a local diffusers folder, or a hub id (loaded offline from the cache)
    per_class: int = 10  # images per class; a rerun with a larger value extends the folder
    classes: tuple[str, ...] | None = None  # generate only these classes (by name); None: all of the dataset
    # --- prompts
    templates: tuple[str, ...] = ()  # registry names or literals with {class}; cycled over the image index
    templates_file: str | None = None  # one template per line, appended to `templates`
    negative_prompt: str | None = None
    style: str | None = None  # folder with learned_embeds.safetensors + invert.json ({"token": ...}), or an
    # `invert --per-class` folder (invert.json "per_class": true): the class's token replaces its phrase
    lora: str | None = None  # a `synthbridge lora` adapter folder (pytorch_lora_weights.safetensors), dataset-wise,
    # or per class (lora.json {"per_class": true}, DIR/<class>/...): each batch is drawn with its class's adapter
    lora_scale: float = 1.0  # the adapter's weight (0: the plain generator)
    # --- image-to-image (Real Guidance, DA-Fusion): start from a real image noised to `strength`, not from noise
    init_images: str | None = None  # "real": image i of class c starts from the (i mod K_c)-th real image of c;
    # "other": from a real image of another class drawn by the image's seed, with the soft label (1 - s^g, s^g);
    # "pairs": from the slerp of two real images of its class inverted to noise (Diff-II; --strength does not apply)
    label_gamma: float = 0.5  # --init-images other: the soft label's exponent g (Diff-Mix's 0.5; 0.8 also in the paper)
    # --- an instruction-editing generator (StableDiffusionInstructPix2PixPipeline): DiffuseMix
    edits: tuple[str, ...] = ()  # the instructions each real image is edited with, one drawn per image by its seed;
    # () with an editing generator: DiffuseMix's (generation.diffusemix.EDITS)
    fractal_blend: float = 0.2  # the weight of the fractal image blended into each hybrid (DiffuseMix's 0.2)
    # --- an image-variation generator (StableUnCLIPImg2ImgPipeline): GIF
    variation_noise: float = 0.2  # the scale of the noise that perturbs each real image's CLIP image embedding
    strength: float | tuple[float, ...] = 0.5  # how far the real image is noised before denoising: 0 keeps it, 1 is
    # pure noise; several values (DA-Fusion's 0.25, 0.5, 0.75, 1.0): each image draws one by its seed (`strengths`)
    shots: int | None = None  # start from the K-shot subset `synthbridge train --shots K --seed shots_seed` uses;
    # None: the whole train split
    shots_seed: int = 0  # the seed that picks the K shots (data.few_shot)
    # --- sampling
    guidance_scale: float | None = None  # None: the generator's default (SD 7.5, mini: synthbridge.json or 3.0)
    steps: int | None = None  # num_inference_steps; None: the generator's default
    scheduler: str | None = None  # ddim, dpm++, euler, pndm (all deterministic), native (the folder's own scheduler);
    # None: the generator's default (SD: ddim; another family: its folder's own); lcm: few-step sampling with an
    # LCM-LoRA (--lora FOLDER with its pytorch_lora_weights.safetensors) or an LCM-distilled generator folder
    timestep_spacing: str | None = None  # leading, trailing or linspace (None: the scheduler config's); trailing for
    # few steps
    height: int | None = None  # pixels, a multiple of 8; None: the generator's native size
    width: int | None = None
    dtype: str = "fp32"  # fp32, fp16, bf16 (fp16/bf16 only on a GPU)
    seed: int = 0  # global seed; image (class, index) uses derive_seed(seed, class, index)
    # --- quality control
    blank_threshold: float = 2.0  # an image whose pixel std (0..255) is below this is blank: regenerated
    filter: bool = False  # keep only images a classifier assigns to the prompted class
    filter_model: str | None = None  # local CLIP folder, `synthbridge train` run folder, or classifier .safetensors
    filter_arch: str | None = None  # timm model name for a bare .safetensors without metadata
    max_retries: int = 3  # new seeds tried for an image that is blank, NSFW-blacked or rejected by the filter
    # --- storage (what the files are; the drawing is the same)
    image_format: str = "png"  # png (lossless), webp or jpg (lossy, at `quality`): see IMAGE_FORMATS
    quality: int = 95  # webp/jpg encoder quality, 1-100; png ignores it
    save_size: int | None = None  # pixels of the saved image's shorter side (PIL LANCZOS); None: as generated
    # --- environment (changes no image beyond float rounding)
    batch_size: int | None = None  # images per pipeline call (every call is padded to this shape); None: 8 on the
    # CPU, on a GPU up to 32 as its free memory allows (generate.default_batch_size)
    compile: bool | None = None  # torch.compile the denoiser (UNet / transformer): faster steps after a one-off
    # compilation. None (auto): on CUDA when this process makes at least generate.COMPILE_MIN_IMAGES images
    device: str | None = None  # None: accelerate's device for this process (cuda:N, mps or cpu)
    shard: tuple[int, int] | None = None  # (i, n): this process makes every n-th work item starting at i
    overwrite: bool = False  # replace an existing set made with other parameters
    data_root: str | None = None  # where full-scale datasets live
    download: bool = False  # let torchvision download a missing dataset
    show_progress: bool = True  # tqdm bar with images/s on the main process

    def check(self) -> None:
        """Values a user can get wrong, as one-line UserErrors (before any model is loaded)."""
        if not (isinstance(self.lora_scale, (int, float)) and 0 <= self.lora_scale < float("inf")):
            raise UserError(f"--lora-scale must be a number >= 0, got {self.lora_scale!r}")
        if not isinstance(self.per_class, int) or self.per_class < 1:
            raise UserError(f"--per-class must be a whole number > 0, got {self.per_class!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise UserError(f"--batch-size must be a whole number > 0, got {self.batch_size!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise UserError(f"--steps must be a whole number > 0, got {self.steps!r}")
        if self.guidance_scale is not None and not self.guidance_scale >= 0:
            raise UserError(f"--guidance-scale must be a number >= 0, got {self.guidance_scale!r}")
        if self.timestep_spacing is not None and self.timestep_spacing not in TIMESTEP_SPACINGS:
            raise UserError(f"unknown --timestep-spacing {self.timestep_spacing!r}; choose one of: "
                            f"{', '.join(TIMESTEP_SPACINGS)}")
        if self.scheduler is not None and self.scheduler not in (*SCHEDULERS, NATIVE_SCHEDULER):
            raise UserError(f"unknown scheduler {self.scheduler!r}; choose one of: {', '.join(SCHEDULERS)}, "
                            f"{NATIVE_SCHEDULER}")
        if self.dtype not in DTYPES:
            raise UserError(f"unknown dtype {self.dtype!r}; choose one of: {', '.join(DTYPES)}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 8 or value % 8):
                raise UserError(f"--{name} must be a multiple of 8 (8, 16, ..., 512), got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise UserError(f"--seed must be a whole number >= 0, got {self.seed!r}")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise UserError(f"--max-retries must be a whole number >= 0, got {self.max_retries!r}")
        if not self.blank_threshold >= 0:
            raise UserError(f"--blank-threshold must be >= 0, got {self.blank_threshold!r}")
        if self.filter and not self.filter_model:
            raise UserError("--filter needs --filter-model: a local CLIP folder, a `synthbridge train` run folder, "
                            "or a classifier .safetensors (with --filter-arch)")
        self._check_init_images()
        if isinstance(self.fractal_blend, bool) or not (isinstance(self.fractal_blend, (int, float))
                                                        and 0 <= self.fractal_blend <= 1):
            raise UserError(f"--fractal-blend must be a number from 0 to 1, got {self.fractal_blend!r}")
        if isinstance(self.variation_noise, bool) or not (isinstance(self.variation_noise, (int, float))
                                                          and self.variation_noise >= 0):
            raise UserError(f"--variation-noise must be a number >= 0, got {self.variation_noise!r}")
        if any(not isinstance(edit, str) or not edit.strip() for edit in self.edits):
            raise UserError("--edits takes instructions as non-empty text, one per argument")
        if self.shard is not None:
            index, count = self.shard
            if not (isinstance(index, int) and isinstance(count, int) and count >= 1 and 0 <= index < count):
                raise UserError(f"--shard must be i/n with 0 <= i < n, got {index}/{count}")
            if self.overwrite and count > 1:
                raise UserError("--overwrite cannot be combined with --shard: each shard would delete the others' "
                                "images; delete the folder once, then start the shards without --overwrite")
        if self.classes is not None and not self.classes:
            raise UserError("--classes needs at least one class name")
        if self.image_format not in IMAGE_FORMATS:
            raise UserError(f"unknown --image-format {self.image_format!r}; choose one of: {', '.join(IMAGE_FORMATS)}")
        if not isinstance(self.quality, int) or isinstance(self.quality, bool) or not 1 <= self.quality <= 100:
            raise UserError(f"--quality must be a whole number from 1 to 100, got {self.quality!r}")
        if self.save_size is not None and (not isinstance(self.save_size, int) or isinstance(self.save_size, bool)
                                           or self.save_size < 1):
            raise UserError(f"--save-size must be a whole number of pixels > 0, got {self.save_size!r}")

    def _check_init_images(self) -> None:
        if self.init_images is None:
            given = [f"--{name.replace('_', '-')}" for name, value, default in (
                ("strength", self.strength, 0.5), ("shots", self.shots, None), ("shots_seed", self.shots_seed, 0),
                ("label_gamma", self.label_gamma, 0.5)) if value != default]
            if given:
                raise UserError(f"{', '.join(given)} without --init-images: they set up image-to-image; add "
                                f"--init-images real, or drop them")
            return
        if self.init_images not in INIT_IMAGES:
            raise UserError(f"--init-images takes {', '.join(map(repr, INIT_IMAGES))} (the dataset's training images of "
                            f"the image's class, or of another class), got {self.init_images!r}")
        if self.init_images == "pairs" and self.strength != 0.5:
            raise UserError("--strength does not apply to --init-images pairs: each image is denoised from the whole "
                            "inversion of its two real images; drop --strength")
        if self.label_gamma != 0.5 and self.init_images != "other":
            raise UserError("--label-gamma labels images translated from another class: it needs --init-images other")
        if isinstance(self.label_gamma, bool) or not (isinstance(self.label_gamma, (int, float)) and self.label_gamma > 0):
            raise UserError(f"--label-gamma must be a number > 0, got {self.label_gamma!r}")
        values = self.strength if isinstance(self.strength, tuple) else (self.strength,)
        if not values or any(isinstance(v, bool) or not (isinstance(v, (int, float)) and 0 < v <= 1) for v in values):
            raise UserError(f"--strength must be a number in (0, 1] (0 would keep the real image, 1 is pure noise), or "
                            f"several separated by commas, got {self.strength!r}")
        if self.shots is not None and (not isinstance(self.shots, int) or isinstance(self.shots, bool) or self.shots < 1):
            raise UserError(f"--shots must be a whole number > 0, got {self.shots!r}")
        if not isinstance(self.shots_seed, int) or isinstance(self.shots_seed, bool) or self.shots_seed < 0:
            raise UserError(f"--shots-seed must be a whole number >= 0, got {self.shots_seed!r}")

    @property
    def strengths(self) -> tuple[float, ...]:
        """The image-to-image strengths images draw from (one value: every image's)."""
        return tuple(float(v) for v in self.strength) if isinstance(self.strength, tuple) else (float(self.strength),)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GenerateConfig:
        """Build from a plain dict (YAML, an experiment grid); unknown keys are errors that list the valid ones."""
        reject_unknown_keys(data, cls, "generate config")
        data = dict(data)
        for key in ("classes", "templates", "strength", "edits"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        if isinstance(data.get("shard"), (list, str)):
            data["shard"] = parse_shard(data["shard"]) if isinstance(data["shard"], str) else tuple(data["shard"])
        return cls(**data)


def parse_shard(text: str) -> tuple[int, int]:
    """'1/4' -> (1, 4)."""
    index, slash, count = str(text).partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        raise UserError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not slash or not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise UserError(f"--shard must be i/n with 0 <= i < n, got {text!r}")
    return shard
