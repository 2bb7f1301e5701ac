"""The typed config of `synthbridge invert`: one frozen dataclass, resolved against the dataset and generator.

Fields left `None` (steps, learning rate, batch size, resolution, token, template) are filled in by `resolve()`:
from the profile (`synthbridge.profiles`: `embedded`, minutes on a CPU, for a generator of small
images; `full`, the study's scale on a GPU) and from the generator (its native image size). The
resolved config is what invert.json records and what a `--resume` is compared against.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from synthbridge.diffusion.pipeline import DTYPES
from synthbridge.errors import UserError, reject_unknown_keys
from synthbridge.profiles import choose_profile, fill_from_profile
from synthbridge.prompts import default_template, resolve_template

# Neutral words to start the style token from, in order of preference, when no --initializer-word is given.
INITIALIZER_CANDIDATES = ("style", "photo", "image", "picture", "drawing", "painting", "art")
LR_SCHEDULES = ("constant", "constant_with_warmup", "cosine", "linear")  # names diffusers' get_scheduler knows

# Defaults per profile. embedded: the mini generator on 2 CPU cores, the whole 1,000-image mnist5k train
# split (3 epochs) in about 25 seconds; longer runs fit the loss better but drew farther from the real set
# (seed 0, guidance 4: 1,500 steps FD 20.0 / KID x1000 614 against 19.3 / 452 at 400). full: the study's
# ~20k iterations on Stable Diffusion, with the learning rate of diffusers' textual-inversion example (5e-4)
# scaled by the batch size as its --scale_lr does.
# Template: the study's wording for Stable Diffusion; for the mini generator, the form of the captions it
# was trained on ("a photo of the digit 7, handwritten, thin pen, ..."). Its tokenizer splits "in" and
# "style" into letters, and the study's wording alone moves its images far from mnist5k (FD 22 -> 59 with
# no token at all); `generate --style` therefore uses the template recorded in invert.json.
PROFILES = {
    "embedded": {"steps": 400, "lr": 5e-3, "batch_size": 8, "template": "a photo of the {class}, {style}"},
    "full": {"steps": 20000, "lr": 2e-3, "batch_size": 4, "template": "style"},
}

# --per-class (DA-Fusion's form): class k of the dataset's class list learns the token CLASS_TOKEN.format(index=k),
# which stands where the class phrase stood in the dataset's plain prompt (`prompts.default_template`: "a photo
# of the {class}" for the digit sets, the form of the mini generator's captions "a photo of the digit 7").
CLASS_TOKEN = "<class-{index}>"

# The fields that decide the learned embedding: a resumed run must match them. Environment fields
# (device, checkpoint interval, grid, progress bar, paths of data) are absent: they change no number.
RESUME_KEYS = ("dataset", "generator", "per_class", "token", "initializer_word", "template", "shots", "steps", "lr",
               "lr_schedule", "lr_warmup_steps", "batch_size", "resolution", "dtype", "seed", "max_norm")


@dataclass(frozen=True)
class InvertConfig:
    # --- what to learn
    out: str  # style folder: learned_embeds.safetensors, invert.json (+ checkpoint.pt while running, grid.png)
    dataset: str = "mnist5k"  # registry name or imagefolder:PATH; all classes of its train split are used
    generator: str = "mini"  # "mini" (embedded), a local diffusers folder, or a hub id in the local cache
    token: str | None = None  # the new token; None: "<{dataset}-style>", e.g. "<mnist5k-style>"
    initializer_word: str | None = None  # one known token; the new row starts as its embedding. None: "style",
    # or the first of INITIALIZER_CANDIDATES the tokenizer knows as one token (a tiny generator may lack "style")
    template: str | None = None  # prompt template name or literal with {class} and {style}; the class is named so
    # the token learns what the class does not explain (style), not the content. None: the profile's default
    shots: int | None = None  # learn from K real images per class (few-shot); None: the whole train split
    per_class: bool = False  # one token per class (CLASS_TOKEN, each starting from its class name's embedding)
    # in place of the class phrase, instead of one dataset token next to it; token and initializer_word stay None
    # --- optimisation (None: the profile's default, see PROFILES)
    profile: str | None = None  # embedded or full; None: embedded for a generator of at most 64 px, else full
    steps: int | None = None  # optimizer steps
    lr: float | None = None  # AdamW learning rate of the one embedding row
    lr_schedule: str = "constant"  # diffusers' get_scheduler name; constant as in diffusers' example
    lr_warmup_steps: int = 0
    batch_size: int | None = None  # images per step
    resolution: int | None = None  # training pixels (square); None: the generator's native size (mini 32, SD 512)
    dtype: str = "fp32"  # frozen weights' dtype: fp16/bf16 halve memory on a GPU; the learned row stays fp32
    # The learned vector is projected back to at most this L2 norm after every step. None: the largest norm
    # among the vocabulary's embeddings, so the token stays a word-like input; 0: no cap. Uncapped, the
    # mini generator's token grew to 3x any word's norm and its style swamped the class named in the prompt.
    max_norm: float | None = None
    seed: int = 0  # every step's images, noise and timesteps are derived from (seed, step)
    # --- environment (never changes the learned embedding)
    checkpoint_every: int | None = None  # steps between checkpoints; None: a tenth of the run (at least 50)
    grid: bool = False  # after training, write grid.png: real | plain prompt | style prompt, one row per class
    device: str | None = None  # None: accelerate's device for this process (cuda, mps or cpu)
    data_root: str | None = None  # where full-scale datasets live
    download: bool = False  # let torchvision download a missing dataset
    show_progress: bool = True  # tqdm bar with the loss
    gradient_checkpointing: bool = False  # recompute the UNet's activations in the backward: less memory (SDXL)
    deterministic: bool = False  # torch's deterministic kernels: on CUDA a resumed run equals an uninterrupted one

    def check(self) -> None:
        """Values a user can get wrong, as one-line UserErrors (before anything is loaded)."""
        if self.max_norm is not None and not self.max_norm >= 0:
            raise UserError(f"--max-norm must be a number >= 0 (0: no cap), got {self.max_norm!r}")
        for name in ("steps", "batch_size", "shots", "checkpoint_every", "resolution"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise UserError(f"--{name.replace('_', '-')} must be a whole number > 0, got {value!r}")
        if self.resolution is not None and self.resolution % 8:
            raise UserError(f"--resolution must be a multiple of 8 (the VAE halves the size three times), got {self.resolution}")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and 0 < self.lr < float("inf")):
            raise UserError(f"--lr must be a finite number > 0, got {self.lr!r}")
        if not isinstance(self.lr_warmup_steps, int) or self.lr_warmup_steps < 0:
            raise UserError(f"--lr-warmup-steps must be a whole number >= 0, got {self.lr_warmup_steps!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise UserError(f"unknown --lr-schedule {self.lr_schedule!r}; choose one of: {', '.join(LR_SCHEDULES)}")
        if self.dtype not in DTYPES:
            raise UserError(f"unknown --dtype {self.dtype!r}; choose one of: {', '.join(DTYPES)}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise UserError(f"--seed must be a whole number >= 0, got {self.seed!r}")
        if self.token is not None:
            check_token(self.token)
        if self.per_class:
            if self.token is not None or self.initializer_word is not None:
                flag = "--token" if self.token is not None else "--initializer-word"
                raise UserError(f"--per-class names its tokens {CLASS_TOKEN.format(index='K')} (K: the class's index) "
                                f"and starts each from its class name; drop {flag}")
            if self.template is not None and "{style}" in resolve_template(self.template):
                raise UserError(f"--per-class puts each class's token in place of {{class}}; --template "
                                f"{self.template!r} must not contain {{style}}")
        choose_profile(self.profile)
        word = self.initializer_word
        if word is not None and (not isinstance(word, str) or not word.strip() or len(word.split()) != 1):
            raise UserError(f"--initializer-word must be one word, got {word!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InvertConfig:
        """Build from a plain dict (YAML, an experiment grid); unknown keys are errors that list the valid ones."""
        reject_unknown_keys(data, cls, "invert config")
        return cls(**data)


def check_token(token: str) -> None:
    """A token is one whitespace-free string (CLIP splits prompts on whitespace before it sees added tokens)."""
    if not isinstance(token, str) or not token or any(c.isspace() for c in token):
        raise UserError(f"--token must be one string without spaces, e.g. '<mnist5k-style>', got {token!r}")


def default_token(dataset: str) -> str:
    """'<mnist5k-style>' for a registry name; '<{folder name}-style>' for imagefolder:PATH."""
    name = dataset.split(":", 1)[1] if dataset.startswith("imagefolder:") else dataset
    name = Path(name.rstrip("/\\")).name or "dataset"
    # Lower-case letters, digits and dashes only: the token survives whatever normalisation a tokenizer applies.
    name = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "dataset"
    return f"<{name}-style>"


def class_token(index: int) -> str:
    """The --per-class token of the class at `index` in the dataset's class list: '<class-3>'."""
    return CLASS_TOKEN.format(index=index)


def resolve(config: InvertConfig, native_size: int) -> InvertConfig:
    """Fill every `None` default: the profile's optimisation defaults, the generator's size, the token (per class:
    the dataset's plain template, the tokens stay implicit in CLASS_TOKEN)."""
    if config.per_class and config.template is None:
        config = dataclasses.replace(config, template=default_template(config.dataset))
    config = fill_from_profile(config, PROFILES, native_size)
    if config.token is None and not config.per_class:
        config = dataclasses.replace(config, token=default_token(config.dataset))
    if config.checkpoint_every is None:
        config = dataclasses.replace(config, checkpoint_every=max(50, config.steps // 10))
    return config
