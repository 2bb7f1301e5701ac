"""Drawing images from (prompt, seed) pairs with a loaded pipeline.

Each image gets its own CPU `torch.Generator` seeded with its own seed, and every pipeline call has
the same batch shape (see `render`), so an image depends on its seed, its prompt and the batch size,
never on its neighbours in the batch: regenerated alone it is bit-identical (tested on the CPU). Made
with another batch size it is equal up to float rounding (at most one 8-bit level in a few pixels).
On a GPU the same holds as far as its kernels are deterministic for a fixed shape.

Image-to-image (`render(..., init_images=, strength=)` with the pipeline of `image_to_image(pipe)`) keeps all
of this: diffusers encodes each start image with its own generator, and its noise comes from the same one.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)


def render(pipe, prompts: Sequence[str], seeds: Sequence[int], *, negative_prompt: str | None, steps: int,
           guidance_scale: float, height: int, width: int, batch_size: int | None = None,
           init_images: Sequence[Image.Image] | None = None,
           strength: float | None = None,
           latents: Sequence[torch.Tensor] | None = None,
           image_embeds: Sequence[torch.Tensor] | None = None) -> tuple[list[Image.Image], list[bool]]:
    """One pipeline call: (images, nsfw flags), image i drawn from `seeds[i]` alone.

    `init_images` (one per prompt, already `height` x `width`) with `strength`: image i starts from
    `init_images[i]` noised to `strength` instead of from pure noise; `pipe` is then `image_to_image(...)`'s.
    `latents` (one [C, h, w] tensor per prompt): image i starts from `latents[i]` instead of its seed's noise (an
    inversion: `ddim_invert`). `image_embeds` (one [D] CLIP image embedding per prompt): what an image-variation
    pipeline (StableUnCLIPImg2ImgPipeline) draws image i from.

    `batch_size`: the call is always made with exactly this many images; a shorter list is padded with
    copies of its last image, whose outputs are dropped. CPU (and GPU) kernels choose their blocking by
    tensor shape, so the same image computed in a batch of 8 and in a batch of 1 differs in the last
    float bits (and, after rounding to 8 bits, now and then by one level in a pixel). With one fixed
    shape an image is bit-identical whatever else is in its batch, at whatever position: the last
    batch of a run, a resumed run, a shard and a single-image regeneration all give the same bytes.
    """
    count = len(prompts)
    if batch_size is not None and count < batch_size:
        prompts = list(prompts) + [prompts[-1]] * (batch_size - count)
        seeds = list(seeds) + [seeds[-1]] * (batch_size - count)
        if init_images is not None:
            init_images = list(init_images) + [init_images[-1]] * (batch_size - count)
        if latents is not None:
            latents = list(latents) + [latents[-1]] * (batch_size - count)
        if image_embeds is not None:
            image_embeds = list(image_embeds) + [image_embeds[-1]] * (batch_size - count)
    # one CPU generator per image: the initial latents (and any scheduler noise) of image i come from its
    # own seed, and on any device, since diffusers draws from CPU generators on the CPU
    generators = [torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds]
    options = call_options(pipe, negative_prompt, guidance_scale)
    if negative_prompt and "negative_prompt" in options:
        options["negative_prompt"] = [negative_prompt] * len(prompts)
    if init_images is not None:  # the start images fix the size (an image-to-image call takes no height/width)
        options["image"] = list(init_images)
        if strength is not None:  # an instruction-editing pipeline takes none
            options["strength"] = strength
    else:
        options.update(height=height, width=width)
    if latents is not None:
        options["latents"] = torch.stack(list(latents))
    if image_embeds is not None:
        options["image_embeds"] = torch.stack(list(image_embeds)).to(pipe.device, pipe.image_encoder.dtype)
    output = pipe(prompt=list(prompts), num_inference_steps=steps, generator=generators, output_type="pil", **options)
    nsfw = getattr(output, "nsfw_content_detected", None) or [False] * len(prompts)  # only SD has a safety checker
    return list(output.images)[:count], [bool(flag) for flag in nsfw][:count]


@torch.no_grad()
def ddim_invert(pipe, image: Image.Image, steps: int) -> torch.Tensor:
    """The noise DDIM sampling would turn into `image` (DDIM inversion, diffusers' `DDIMInverseScheduler` on the
    pipeline's own schedule), conditioned on the empty prompt so that one inversion of a real image serves every
    prompt: a [C, h, w] latent on the pipeline's device. Stable Diffusion 1.x/2.x pipelines (a UNet conditioned on one
    text encoder's states)."""
    from diffusers import DDIMInverseScheduler
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # "config attributes ... will be ignored": another scheduler's, as meant
    try:
        inverse = DDIMInverseScheduler.from_config(pipe.scheduler.config)
    finally:
        diffusers_logging.set_verbosity(level)
    inverse.set_timesteps(steps, device=pipe.device)
    unet, vae = pipe.unet, pipe.vae
    pixels = pipe.image_processor.preprocess(image).to(pipe.device, vae.dtype)
    latents = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
    states = pipe.encode_prompt("", pipe.device, 1, do_classifier_free_guidance=False)[0]
    for t in inverse.timesteps:
        noise = unet(latents, t, encoder_hidden_states=states).sample
        latents = inverse.step(noise, t, latents).prev_sample
    return latents[0]


def slerp(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """Spherical interpolation from `a` (weight 0) to `b` (weight 1), as one vector each (what keeps interpolated
    Gaussian noise at the norm a sampler expects; linear interpolation shrinks it)."""
    x, y = a.double().flatten(), b.double().flatten()
    cosine = torch.clamp(torch.dot(x, y) / (x.norm() * y.norm()), -1.0, 1.0)
    theta = torch.arccos(cosine)
    if float(theta) < 1e-4:  # (nearly) parallel: the arc is the chord
        mixed = (1 - weight) * a.double() + weight * b.double()
    else:
        mixed = (torch.sin((1 - weight) * theta) * a.double() + torch.sin(weight * theta) * b.double()) / torch.sin(theta)
    return mixed.to(a.dtype)


def image_to_image(pipe):
    """The image-to-image pipeline of a loaded text-to-image one, on the same components (diffusers' `from_pipe`: no
    second load, and its learned tokens and LoRA adapters are the same modules): StableDiffusionImg2ImgPipeline for
    Stable Diffusion 1.x/2.x, AutoPipelineForImage2Image's choice for any other family. A family diffusers has no
    image-to-image pipeline for is a one-line UserError."""
    from diffusers import AutoPipelineForImage2Image, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    from synthbridge.diffusion.pipeline import denoiser
    from synthbridge.errors import UserError

    builder = StableDiffusionImg2ImgPipeline if type(pipe) is StableDiffusionPipeline else AutoPipelineForImage2Image
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # its cast's "modules that should be kept in float32: []" notice
    try:
        # from_pipe casts the shared modules to `torch_dtype` (float32 when not given): keep the loaded dtype
        # (`dtype=` only exists in recent diffusers)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            image_pipe = builder.from_pipe(pipe, torch_dtype=denoiser(pipe).dtype)
    except (ValueError, KeyError, TypeError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"{type(pipe).__name__} has no image-to-image pipeline in diffusers ({first_line}); use a "
                        f"Stable Diffusion, SDXL, SD 3 or FLUX generator, or drop --init-images") from None
    finally:
        diffusers_logging.set_verbosity(level)
    image_pipe.set_progress_bar_config(disable=True)
    return image_pipe


def call_parameters(pipe) -> set[str]:
    """The keyword arguments the pipeline's `__call__` takes (families differ: not all take a negative prompt)."""
    return set(inspect.signature(pipe.__call__).parameters)


def call_options(pipe, negative_prompt: str | None, guidance_scale: float) -> dict:
    """The guidance and negative-prompt arguments of a call, for those this pipeline takes (see `check_options`)."""
    accepted = call_parameters(pipe)
    options: dict = {"guidance_scale": guidance_scale} if "guidance_scale" in accepted else {}
    if "negative_prompt" in accepted:
        options["negative_prompt"] = None
    return options


def check_options(pipe, negative_prompt: str | None, guidance_given: bool) -> None:
    """Asking a pipeline for an option its family does not take is a one-line UserError, never silently dropped."""
    from synthbridge.errors import UserError

    accepted = call_parameters(pipe)
    family = type(pipe).__name__
    if negative_prompt and "negative_prompt" not in accepted:
        raise UserError(f"{family} takes no negative prompt; leave --negative-prompt out for this generator")
    if guidance_given and "guidance_scale" not in accepted:
        raise UserError(f"{family} takes no guidance scale; leave --guidance-scale out for this generator")


def is_blank(image: Image.Image, threshold: float) -> bool:
    """True for a (nearly) uniform image: the black output of a safety checker, or a collapsed sample."""
    return float(np.asarray(image, dtype=np.float32).std()) < threshold


# diffusers' notice (on every call, with the cut-off tokens) and transformers' (once per tokenizer)
TRUNCATION_NOTICES = ("The following part of your input was truncated", "Token indices sequence length is longer")


class _DropTruncationNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TRUNCATION_NOTICES)


def check_prompt_lengths(pipe, prompts_by_class: dict[str, list[str]]) -> list[str]:
    """Warn once per class whose longest prompt is more tokens than the pipeline's text encoder reads (the text
    encoder sees only the first `model_max_length`), and silence diffusers' and transformers' own notices (the
    former repeats on every call and prints the cut-off tokens). Returns the classes warned about."""
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None:  # a family without a (first) tokenizer: nothing to measure against
        return []
    limit = int(tokenizer.model_max_length)
    long = []
    for name, prompts in prompts_by_class.items():
        length = max(len(tokenizer(prompt, verbose=False).input_ids) for prompt in prompts)
        if length > limit:
            long.append(name)
            log.warning("class %r: its prompt is %d tokens, longer than the generator's limit of %d; the text encoder "
                        "reads only the first %d (shorten the template or the class phrase)", name, length, limit, limit)
    for name in (type(pipe).__module__, "transformers.tokenization_utils_base"):
        library_log = logging.getLogger(name)
        if not any(isinstance(f, _DropTruncationNotice) for f in library_log.filters):
            library_log.addFilter(_DropTruncationNotice())
    return long
