"""`generate(config)`: make the synthetic images of one set, resumably and split over processes.

In: a `GenerateConfig` (dataset, generator, prompts, sampler, images per class, output folder).
Out: the folder described in `synthbridge.generation.folder` (images as PNG, WebP or JPEG at the set's saved
size, manifest.jsonl, generation.json) and a summary dict (the content of generation.json plus this run's numbers).
The generator is any diffusers text-to-image pipeline (`diffusion.pipeline.load_generator`). Adapted to the real
data (`generation.adapted`), an image can start from a real training image (--init-images real, image-to-image
at --strength through the same components), be drawn with its class's LoRA adapter or its class's learned token.

Every image is a pure function of its coordinates: image `index` of class `c` is drawn from
`derive_seed(seed, c, index)` with the prompt of template `index mod T`; a retry k uses
`derive_seed(seed, c, index, "retry", k)`, and every pipeline call has the shape of a full batch
(`diffusion.sampling.render`); with --init-images it starts from real image `index mod K_c` of its class.
Hence a rerun completes an interrupted set, a larger --per-class extends it, and n shards (or n accelerate
processes) make exactly the images one process would: which process makes an image, and with which neighbours
in its batch, never changes a bit of it. (A different --batch-size changes images only by float rounding; each
manifest line records the batch size it was made with.)
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from accelerate import PartialState
from PIL import Image

from synthbridge.data import DatasetBundle, load_dataset
from synthbridge.diffusion.pipeline import (
    EDITING_PIPELINES,
    VARIATION_PIPELINES,
    GeneratorInfo,
    check_scheduler,
    denoiser,
    describe_generator,
    load_generator,
    locate_generator,
    set_scheduler,
    torch_dtype,
)
from synthbridge.diffusion.sampling import check_options, check_prompt_lengths, image_to_image, is_blank, render
from synthbridge.diffusion.styles import load_style, read_style, style_digest, style_files, text_encoder_slots
from synthbridge.errors import UserError
from synthbridge.generation import folder as store
from synthbridge.generation.adapted import (
    Adapters,
    Inversions,
    RealStarts,
    class_templates,
    drop_adapters,
    per_class_style,
)
from synthbridge.generation.config import IMAGE_FORMATS, GenerateConfig, SetIdentity
from synthbridge.generation.diffusemix import EDITS, edit_prompt, hybrid
from synthbridge.generation.variation import Variations
from synthbridge.io import check_format, ensure_writable_dir, progress
from synthbridge.prompts import build_prompt, resolve_templates, template_for
from synthbridge.seeding import derive_seed

log = logging.getLogger(__name__)


# --compile's automatic rule: compiling an SD-1.5-sized UNet took 44 s on an H200 and made batch-32 sampling 1.39x
# faster (6.2 -> 8.6 images/s), so it pays after about 1,000 images; auto compiles on CUDA from twice that.
COMPILE_MIN_IMAGES = 2000


def compiles(choice: bool | None, device: torch.device, images: int) -> bool:
    """Whether this process compiles its denoiser: as asked, or (None, auto) on CUDA when it has at least
    COMPILE_MIN_IMAGES images to make."""
    if choice is not None:
        return choice
    return device.type == "cuda" and images >= COMPILE_MIN_IMAGES


# --batch-size's default: 8 on the CPU; on a GPU the largest power of two up to 32 whose activations fit in half its
# free memory, at what an SD-1.5-sized pipeline took on an H200 (fp16, 512 px, 25 steps, guidance on: 2.7 GiB at
# batch 1, 21.1 GiB at batch 32, so about 0.6 GiB per image), scaled by the image's pixels and the dtype's bytes.
CPU_BATCH, GPU_BATCH_MAX = 8, 32
GIB_PER_IMAGE_512_HALF = 0.6


def default_batch_size(device: torch.device, pixels: int, dtype: str) -> int:
    """Images per pipeline call when --batch-size is not given (see CPU_BATCH, GPU_BATCH_MAX)."""
    if device.type != "cuda":
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(device)
    per_image = GIB_PER_IMAGE_512_HALF * pixels / 512**2 * (2 if dtype == "fp32" else 1) * 2**30
    batch = 1
    while batch < GPU_BATCH_MAX and 2 * batch * per_image <= free / 2:
        batch *= 2
    return batch


def image_seed(seed: int, class_name: str, index: int, attempt: int = 0) -> int:
    """The seed of an image; attempt k > 0 is the k-th replacement of a rejected one."""
    return derive_seed(seed, class_name, index) if attempt == 0 else derive_seed(seed, class_name, index, "retry", attempt)


@dataclass
class _Attempt:
    """An image in the queue: which try this is and the seeds (and why) of the tries it replaces."""

    item: store.WorkItem
    attempt: int = 0
    rejected_seeds: list[int] = field(default_factory=list)
    rejected_reasons: list[str] = field(default_factory=list)


def generate(config: GenerateConfig, *, pipeline=None, bundle: DatasetBundle | None = None) -> dict:
    """Make (or complete, or extend) the set `config` describes in `config.out`; returns the summary.

    `pipeline`: an already loaded pipeline for `config.generator` (an experiment grid loads Stable
    Diffusion once); its scheduler is replaced by the one asked for. `bundle`: the dataset, if already loaded.
    """
    began = time.perf_counter()

    # 1. check inputs: everything a user can get wrong fails here, before a model is loaded
    config.check()
    out = ensure_writable_dir(config.out)
    style_token = style_sha256 = style_template = None
    class_style = per_class_style(config.style) if config.style else None  # one token per class
    if class_style is not None:
        templates = class_templates(config.dataset, config.templates, config.templates_file, class_style.template)
    else:
        if config.style:
            style_token, _, style_info = read_style(config.style)
            style_template = style_info.get("template")  # the prompt form the token was learned in
        templates = resolve_templates(config.dataset, config.templates, config.templates_file, style_token,
                                      style_template)
    if config.style:  # checked above: every file is there
        style_sha256 = style_digest(style_files(config.style))  # for a per-class folder: every class's file
    # Without a GPU, accelerate only recognises torchrun's processes when told it runs on the CPU.
    no_accelerator = not (torch.cuda.is_available() or torch.backends.mps.is_available())
    state = PartialState(cpu=no_accelerator)  # not fixed to the CPU by --device cpu: later work in this process
    # (a `run` grid trains after generating) keeps the device accelerate picks
    device = torch.device(config.device) if config.device else state.device
    torch_dtype(config.dtype, device)
    if config.filter and not Path(config.filter_model).expanduser().exists():
        raise UserError(f"--filter-model {config.filter_model!r} does not exist; pass a CLIP folder, a train run "
                        f"folder or a .safetensors file")
    generator_folder, generator_id = locate_generator(config.generator)
    if bundle is None:
        bundle = load_dataset(config.dataset, data_root=config.data_root, download=config.download)
    classes, phrases = select_classes(bundle, config.classes)
    adapters = Adapters.read(config.lora, classes, config.lora_scale) if config.lora else None
    if class_style is not None:
        if lacking := [name for name in classes if name not in class_style.tokens]:
            raise UserError(f"style folder {config.style!r} has no token for class {lacking[0]!r}; invert it with "
                            f"`synthbridge invert --per-class`, or leave the class out with --classes")
        style_token = {name: class_style.tokens[name] for name in classes}  # the set's: one token per class

    # 2. the set: fill the sampler defaults from the generator's files and compare with what the folder
    #    holds (read only; a refusal costs no model load)
    info = describe_generator(generator_id, generator_folder)
    if config.style:  # a family that cannot hold a learned token fails before any weights load
        text_encoder_slots(info.pipeline_class, info.components)
    guidance_given = config.guidance_scale is not None
    config = resolve(config, info)
    starts = RealStarts.build(bundle, classes, config.shots, config.shots_seed,
                              config.strengths if noises_starts(config, info) else (), config.seed,
                              mode=config.init_images, gamma=config.label_gamma) if config.init_images else None
    if config.batch_size is None:  # an environment choice: images differ by float rounding only (see SET_KEYS)
        config = replace(config, batch_size=default_batch_size(device, config.height * config.width, config.dtype))
    identity = set_identity(config, info, classes, templates, style_token, style_sha256, adapters, starts)
    set_params = identity.record()
    with store.folder_lock(out):
        previous = store.prepare_folder(out, set_params, config.overwrite)
        if store.is_complete(out, previous, config, classes, state.num_processes):  # a rerun of a finished set (the
            # grid's workers ask for every set their cells read): nothing to make, so no model is loaded
            return {**previous, "out": str(out), "run": {"generated": 0, "given_up": 0, "retries": 0, "seconds": 0.0,
                                                         "images_per_second": None, "nothing_to_make": True}}

    # 3. load the models: the generator (weights, scheduler, learned tokens, LoRA adapters; its image-to-image
    #    form for --init-images) and the filter's classifier
    if pipeline is None:
        pipe = load_generator(info, config.dtype, device, quiet=not config.show_progress)
    else:
        pipe = pipeline.to(device)
        pipe.set_progress_bar_config(disable=True)
        if denoiser(pipe).dtype != torch_dtype(config.dtype, device) or pipe.vae_scale_factor != info.vae_scale_factor:
            raise UserError(f"the given pipeline ({denoiser(pipe).dtype}) is not {config.generator!r} in {config.dtype}")
        drop_adapters(pipe)  # a previous set's
    set_scheduler(pipe, config.scheduler, config.timestep_spacing)
    if config.style:
        load_style(pipe, config.style)  # a per-class folder: every class's token
    if adapters is not None:
        adapters.load(pipe)
    if noises_starts(config, info):  # the same components (tokens, adapters, scheduler) in diffusers' image-to-image
        pipe = image_to_image(pipe)  # pipeline
    check_options(pipe, config.negative_prompt, guidance_given)
    class_filter = None
    if config.filter:
        from synthbridge.generation.filters import load_filter

        class_filter = load_filter(config.filter_model, config.filter_arch, bundle.classes, bundle.phrases,
                                   bundle.superclass, device)
        if missing := [c for c in classes if c not in class_filter.classes]:
            raise UserError(f"the filter classifier does not know classes {', '.join(map(repr, missing[:5]))}; "
                            f"pass one trained on this dataset")
    load_seconds = time.perf_counter() - began

    # 4. record the set: replace it (--overwrite), or start / resume / extend it
    with store.folder_lock(out):
        previous = store.prepare_folder(out, set_params, config.overwrite)  # again: another shard may have started
        if state.is_main_process:
            if config.overwrite and previous is not None:
                store.clear(out, previous.get("set", {}).get("classes", []) + classes)
                previous = None
            store.write_generation(out, store.start_record(previous, set_params, config, info, classes))
    state.wait_for_everyone()

    # 5. plan: this process's share of the items (shard, then accelerate process), minus finished ones
    shard = config.shard or (0, 1)
    process = (state.process_index, state.num_processes)
    worker = store.worker_name(shard, process)
    with store.claim_worker(out, worker):  # two processes making the same share would undo each other's work
        items = store.work_items(classes, config.per_class, IMAGE_FORMATS[config.image_format][1])
        mine = store.split(store.split(items, *shard), *process)
        todo = store.pending(out, mine)
        part = store.part_path(out, worker)
        compiled = compiles(config.compile, device, len(todo))
        if compiled:  # the denoiser with its adapters in: what runs at every sampling step (a given pipeline keeps it)
            from synthbridge.models import compile_denoiser

            compile_denoiser(pipe, device)

        # 6. generate: batches of prompts and seeds -> checks (blank, NSFW, filter) -> PNG, then manifest line
        generate_began = time.perf_counter()
        # a class's learned token (per-class --style) takes the place of its phrase
        prompt_of = {name: style_token[name] if class_style else phrase for name, phrase in zip(classes, phrases)}
        set_token = None if class_style else style_token
        prompt = lambda item: build_prompt(template_for(templates, item.index), prompt_of[item.class_name],
                                           bundle.superclass, set_token)
        if config.edits:  # an editing generator: each real image edited with an instruction drawn by its seed
            prompt = lambda item: edit_prompt(config.edits, config.seed, item.class_name, item.index)  # noqa: E731
        if state.is_main_process:
            check_prompt_lengths(pipe, {name: list(config.edits) or [
                build_prompt(t, prompt_of[name], bundle.superclass, set_token) for t in templates] for name in classes})
        try:
            made, given_up, retried = _make_images(
                todo, pipe, config, out, part, identity, class_filter, prompt=prompt, starts=starts,
                adapters=adapters, show_progress=config.show_progress and state.is_local_main_process)
        except BaseException:
            # Interrupted or crashed: fold what is finished into manifest.jsonl so the folder is usable as is;
            # a rerun of the same command makes the rest.
            with store.folder_lock(out):
                store.merge(out, classes, remove_parts=[part])
            raise
        seconds = time.perf_counter() - generate_began

        # 7. merge the manifest parts (main process, once every process is done) and write the summary
        run = {"shard": f"{shard[0]}/{shard[1]}", "worker": worker, "processes": state.num_processes,
               "per_class": config.per_class, "generated": made, "given_up": given_up, "retries": retried,
               "seconds": round(seconds, 3), "load_seconds": round(load_seconds, 3), "batch_size": config.batch_size,
               "device": str(device), "images_per_second": round(made / seconds, 4) if seconds > 0 else None,
               "compiled": compiled, "compile": {None: "auto", True: "on", False: "off"}[config.compile],
               "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "filter": class_filter.description if class_filter is not None else None}
        runs = [run]
        if state.num_processes > 1:
            from accelerate.utils import gather_object

            runs = gather_object([run])
        state.wait_for_everyone()
        if state.is_main_process:
            with store.folder_lock(out):
                # every process of this launch has finished: all their parts can go once merged
                summary = store.finish(out, classes, [store.part_path(out, r["worker"]) for r in runs], runs)
        state.wait_for_everyone()
    if not state.is_main_process:
        summary = store.read_generation(out) or {}
    for name in summary.get("failing_classes", []):
        counts = summary["counts"]["per_class"][name]
        log.warning("class %r: most images failed (%d kept, %d retried, %d given up: %s); look at its prompts or "
                    "generator before training on it", name, counts["images"], counts["retried"], counts["given_up"],
                    counts["reasons"])
    return {**summary, "out": str(out), "run": run}


def _make_images(todo: list[store.WorkItem], pipe, config: GenerateConfig, out: Path, part: Path, identity: SetIdentity,
                 class_filter, prompt, starts: RealStarts | None, adapters: Adapters | None,
                 show_progress: bool) -> tuple[int, int, int]:
    """The generation loop of one process: (images written, images given up, retries).

    A rejected image (blank, NSFW, filtered out) goes back to the end of its queue with its next retry
    seed, so retries fill later batches; after `max_retries` it is recorded as given up (no PNG). There is
    one queue, or with per-class adapters one per class, emptied class by class: a batch is drawn with its
    class's adapter, so it holds that class only (and is padded like any other).
    """
    made = given_up = retried = 0
    per_class = adapters is not None and adapters.per_class is not None
    queues = _queues(todo, per_class, starts)
    inversions = Inversions(pipe, starts, config.steps, config.width, config.height) if starts and starts.pairs else None
    variations = Variations(pipe, starts, config.variation_noise) if identity.variation_noise is not None else None
    writer = store.ImageWriter(part, config.image_format, config.quality, config.save_size, limit=2 * config.batch_size)
    with progress(total=len(todo), unit="img", desc="generate", enabled=show_progress, dynamic_ncols=True) as bar, \
            writer:
        for queue in queues:
            while queue:
                batch = [queue.popleft() for _ in range(min(config.batch_size, len(queue)))]
                if per_class:
                    adapters.activate(pipe, batch[0].item.class_name)
                seeds = [image_seed(config.seed, a.item.class_name, a.item.index, a.attempt) for a in batch]
                prompts = [prompt(a.item) for a in batch]
                sources = [starts.source(a.item.class_name, a.item.index) for a in batch] if starts else None
                varied = [None] * len(batch)
                if inversions is not None:  # Diff-II: from the slerp of two inverted real images, no strength
                    strength, pairs = None, [starts.partner(a.item.class_name, a.item.index) for a in batch]
                    latents = [inversions.start(a.item.class_name, a.item.index) for a in batch]
                    images, nsfw = render(pipe, prompts, seeds, latents=latents, **_sampling(config))
                elif variations is not None:  # GIF: from a perturbed CLIP embedding of the real image
                    strength, pairs = None, None
                    perturbed = [variations.perturbed(a.item.class_name, source, seed)
                                 for a, source, seed in zip(batch, sources, seeds)]
                    varied = [record for _, record in perturbed]
                    images, nsfw = render(pipe, prompts, seeds, image_embeds=[e for e, _ in perturbed],
                                          **_sampling(config))
                else:  # None where the starts are not noised to a strength (an editing generator)
                    strength = starts.strength(batch[0].item.class_name, batch[0].item.index) if starts else None
                    pairs, images, nsfw = None, *_draw(pipe, config, prompts, seeds, starts, sources, strength)
                edits = [None] * len(batch)
                if config.edits:  # DiffuseMix: half real, half edit, blended with a fractal; the real image's label
                    made_up = [hybrid(starts.image(source, config.width, config.height), image, seed, config.fractal_blend)
                               for source, image, seed in zip(sources, images, seeds)]
                    images, edits = [m[0] for m in made_up], [m[1] for m in made_up]
                reasons: list[str | None] = ["nsfw" if flag else "blank" if is_blank(image, config.blank_threshold)
                                             else None for image, flag in zip(images, nsfw)]
                scores: list[float | None] = [None] * len(batch)
                if class_filter is not None and (check := [i for i, r in enumerate(reasons) if r is None]):
                    verdicts = class_filter([images[i] for i in check], [batch[i].item.class_name for i in check])
                    for i, (accepted, score) in zip(check, verdicts):
                        scores[i] = round(score, 4)
                        if not accepted:
                            reasons[i] = "filter"
                for k, (attempt, image, seed, reason) in enumerate(zip(batch, images, seeds, reasons)):
                    record = _manifest_line(config, identity, attempt, seed, prompts[k], scores[k],
                                            starts.describe(sources[k]) if starts else None, strength,
                                            starts.soft_label(attempt.item.class_name, sources[k], strength)
                                            if starts else None,
                                            {**starts.describe(pairs[k][0]), "weight": pairs[k][1]} if pairs else None,
                                            edits[k], varied[k])
                    if reason is None:  # written while the next batch is drawn; listed once complete and in place
                        writer.put(image, out / attempt.item.path, record)
                        made += 1
                    elif attempt.attempt < config.max_retries:
                        log.info("image %s (seed %d) is %s; trying the next seed", attempt.item.path, seed, reason)
                        retried += 1
                        queue.append(_Attempt(attempt.item, attempt.attempt + 1, attempt.rejected_seeds + [seed],
                                              attempt.rejected_reasons + [reason]))
                        continue
                    else:
                        log.warning("giving up on %s after %d tries (last: %s)", attempt.item.path,
                                    attempt.attempt + 1, reason)
                        record.update(status="rejected", seed=None, regenerated_from_seeds=attempt.rejected_seeds + [seed],
                                      rejected_reasons=attempt.rejected_reasons + [reason])
                        writer.line(record)
                        given_up += 1
                    bar.update(1)
                    bar.set_postfix(retries=retried, given_up=given_up, refresh=False)
    return made, given_up, retried


def _draw(pipe, config: GenerateConfig, prompts: list[str], seeds: list[int], starts: RealStarts | None,
          sources: list[int] | None, strength: float | None):
    """One padded pipeline call (`render`): from noise, or from the real images `sources` at `strength`."""
    init_images = [starts.image(i, config.width, config.height) for i in sources] if starts else None
    return render(pipe, prompts, seeds, init_images=init_images, strength=strength, **_sampling(config))


def _sampling(config: GenerateConfig) -> dict:
    """`render`'s sampling arguments of a resolved config."""
    return dict(negative_prompt=config.negative_prompt, steps=config.steps, guidance_scale=config.guidance_scale,
                height=config.height, width=config.width, batch_size=config.batch_size)


def _queues(todo: list[store.WorkItem], per_class: bool, starts: RealStarts | None) -> list[deque]:
    """The work in queues that each fill batches one pipeline call can draw: one queue, or one per class (per-class
    adapters: a batch is drawn with its class's adapter) and per strength (a call noises its starts to one strength),
    in the set's class order and the strengths' order, each in the order of `todo`."""
    def key(item: store.WorkItem) -> tuple:
        strength = starts.strength(item.class_name, item.index) if starts else None
        return (item.class_position if per_class else 0, strength or 0.0)

    queues: dict[tuple, deque] = {}
    for item in todo:
        queues.setdefault(key(item), deque()).append(_Attempt(item))
    return [queues[k] for k in sorted(queues)]


def select_classes(bundle: DatasetBundle, wanted) -> tuple[list[str], list[str]]:
    """(class names, phrases) to generate, in dataset order; unknown names are errors."""
    if wanted is None:
        return list(bundle.classes), list(bundle.phrases)
    known = set(bundle.classes)
    if unknown := [name for name in wanted if name not in known]:
        raise UserError(f"unknown class {unknown[0]!r} for dataset {bundle.name!r}; its classes are: "
                        f"{', '.join(bundle.classes[:12])}{' ...' if len(bundle.classes) > 12 else ''}")
    chosen = set(wanted)
    pairs = [(c, p) for c, p in zip(bundle.classes, bundle.phrases) if c in chosen]
    return [c for c, _ in pairs], [p for _, p in pairs]


def resolve(config: GenerateConfig, info: GeneratorInfo) -> GenerateConfig:
    """Fill the sampler settings the user left open from the generator's defaults, and check the size."""
    defaults = info.defaults
    resolved = replace(
        config,
        guidance_scale=float(config.guidance_scale if config.guidance_scale is not None else defaults["guidance_scale"]),
        steps=int(config.steps if config.steps is not None else defaults["steps"]),
        scheduler=config.scheduler or defaults["scheduler"],
        height=int(config.height or defaults.get("height") or info.native_size),
        width=int(config.width or defaults.get("width") or info.native_size))
    resolved = replace(resolved, save_size=resolved.save_size or min(resolved.height, resolved.width))
    for name in ("height", "width"):
        value = getattr(resolved, name)
        if value % 8 or value % info.vae_scale_factor:
            raise UserError(f"--{name} must be a multiple of 8 and of the VAE's factor {info.vae_scale_factor}, got {value}")
    resolved.check()
    if resolved.init_images == "pairs" and (info.pipeline_class != "StableDiffusionPipeline"
                                            or resolved.scheduler != "ddim"):
        raise UserError(f"--init-images pairs inverts real images with DDIM: it needs a Stable Diffusion 1.x/2.x "
                        f"generator and --scheduler ddim (got {info.pipeline_class}, {resolved.scheduler})")
    if info.edits:
        resolved = _editing(resolved, info)
    elif resolved.edits or resolved.fractal_blend != 0.2:
        raise UserError(f"--edits and --fractal-blend are for an instruction-editing generator "
                        f"({', '.join(EDITING_PIPELINES)}); {info.name!r} is a {info.pipeline_class}")
    if info.varies:
        if resolved.init_images != "real" or resolved.style or resolved.lora:
            raise UserError(f"{info.name!r} is an image-variation generator ({info.pipeline_class}): it varies real "
                            f"images; use --init-images real, without --style or --lora")
    elif resolved.variation_noise != 0.2:
        raise UserError(f"--variation-noise is for an image-variation generator ({', '.join(VARIATION_PIPELINES)}); "
                        f"{info.name!r} is a {info.pipeline_class}")
    if noises_starts(resolved, info) and int(resolved.steps * min(resolved.strengths)) < 1:
        raise UserError(f"--strength {min(resolved.strengths)} of --steps {resolved.steps} leaves no denoising step "
                        f"(image-to-image runs int(steps x strength)); raise --strength or --steps")
    check_scheduler(info, resolved.scheduler)
    return resolved


def noises_starts(config: GenerateConfig, info: GeneratorInfo) -> bool:
    """Whether each image starts from a real image noised to a strength (diffusers' image-to-image pipeline):
    --init-images real or other with a text-to-image generator. Not pairs (denoised from whole inversions), and not
    an editing or image-variation generator (they take the real image itself)."""
    return config.init_images in ("real", "other") and not (info.edits or info.varies)


def _editing(config: GenerateConfig, info: GeneratorInfo) -> GenerateConfig:
    """The config of an instruction-editing generator (DiffuseMix): it edits the real images (--init-images real),
    with DiffuseMix's instructions unless --edits gives others; it takes no learned token or adapter."""
    if config.init_images != "real":
        raise UserError(f"{info.name!r} is an instruction-editing generator ({info.pipeline_class}): it edits real "
                        f"images; add --init-images real")
    if config.style or config.lora:
        raise UserError(f"--style and --lora fit a text-to-image generator; {info.name!r} edits images "
                        f"({info.pipeline_class}): leave them out")
    return replace(config, edits=tuple(config.edits) or EDITS)


def regenerate_image(out: str | Path, class_name: str, index: int, *, pipeline=None, device: str | None = None,
                     batch_size: int | None = None, bundle: DatasetBundle | None = None) -> Image.Image:
    """Make one image of a folder again, alone, from its manifest line (seed, prompt, source) and generation.json.

    The call has the batch shape the image was made with (padded, see `render`), and the image is resized
    to the set's saved size, so a PNG set's file is reproduced bit for bit (for webp/jpg: the image before
    lossy encoding); pass `batch_size=1` for a plain single-image call (equal up to rounding). Per-class
    adapters: only the image's class's adapter is loaded. `bundle`: the dataset (image-to-image sets start
    from its training images; loaded from the set's record when not given).
    """
    out = Path(out)
    record = store.read_generation(out)
    if record is None:
        raise UserError(f"{str(out)!r} has no {store.GENERATION_JSON}; it was not made by `synthbridge generate`")
    line = store.latest(store.read_records(out), out).get((class_name, index))
    if line is None or line.get("status", "accepted") != "accepted":
        raise UserError(f"{str(out)!r} has no image {index} of class {class_name!r}")
    check_format(record, out, "a synthetic set")
    params = record["set"]
    torch_device = torch.device(device) if device else (pipeline.device if pipeline is not None else PartialState().device)
    if pipeline is None:
        folder, generator_id = locate_generator(params["generator"])
        pipe = load_generator(describe_generator(generator_id, folder), params["dtype"], torch_device, quiet=True)
    else:
        pipe = pipeline.to(torch_device)
    set_scheduler(pipe, params["scheduler"], params.get("timestep_spacing"))
    if params["style_token"]:
        load_style(pipe, record["config"]["style"])
    drop_adapters(pipe)
    if params.get("lora"):
        adapters = Adapters.read(params["lora"], [class_name], params["lora_scale"])
        adapters.load(pipe)
        adapters.activate(pipe, class_name)
    init_images = latents = image_embeds = None
    if params.get("init_images"):
        if bundle is None:
            bundle = load_dataset(params["dataset"], data_root=record["config"].get("data_root"))
        starts = RealStarts(bundle.train, {})
        if params.get("variation_noise") is not None:  # GIF: the perturbation its seed draws, as made
            starts = RealStarts.build(bundle, params["classes"], params.get("shots"), params.get("shots_seed") or 0)
            image_embeds = [Variations(pipe, starts, params["variation_noise"]).perturbed(
                class_name, line["source"]["index"], line["seed"])[0]]
        elif params["init_images"] == "pairs":  # the slerp of its two real images' inversions, as recorded
            from synthbridge.diffusion.sampling import slerp

            inversions = Inversions(pipe, starts, params["steps"], params["width"], params["height"])
            latents = [slerp(inversions.latent(line["source"]["index"]), inversions.latent(line["pair"]["index"]),
                             line["pair"]["weight"])]
        else:
            init_images = [starts.image(line["source"]["index"], params["width"], params["height"])]
            if not params.get("edits"):
                pipe = image_to_image(pipe)
    images, _ = render(pipe, [line["prompt"]], [line["seed"]], negative_prompt=params["negative_prompt"],
                       steps=params["steps"], guidance_scale=params["guidance_scale"], height=params["height"],
                       width=params["width"], batch_size=batch_size or line.get("batch_size"),
                       init_images=init_images, strength=line.get("strength"), latents=latents,
                       image_embeds=image_embeds)
    if params.get("edits"):  # DiffuseMix: the hybrid the line records, from the same seed
        images = [hybrid(init_images[0], images[0], line["seed"], params["fractal_blend"])[0]]
    return store.stored_image(images[0], params["save_size"])


def _manifest_line(config: GenerateConfig, identity: SetIdentity, attempt: _Attempt, seed: int, prompt: str,
                   score: float | None, source: dict | None, strength: float | None, label: dict | None = None,
                   pair: dict | None = None, edit: dict | None = None, variation: dict | None = None) -> dict:
    """An image's line: where it is, its seed and prompt, the set's fields that describe it (`line_fields`; an
    image-to-image one: its own strength), the call shape that reproduces it (`batch_size`), the seeds it replaced;
    one translated from another class: its soft label ({class: weight}, what training reads)."""
    item = attempt.item
    line = {"class": item.class_name, "path": item.path, "index": item.index, "status": "accepted", "prompt": prompt,
            "seed": seed, **identity.line_fields(item.class_name, item.index, strength),
            "batch_size": config.batch_size,  # the call shape: with it, regenerate_image() gives the same bytes
            "regenerated_from_seeds": attempt.rejected_seeds, "rejected_reasons": attempt.rejected_reasons}
    if source is not None:  # image-to-image: the real image it started from, and how far it was noised
        line["source"] = source
    if label is not None:
        line["label"] = label
    if pair is not None:  # Diff-II: the second real image it interpolates toward, and the weight of the slerp
        line["pair"] = pair
    if edit is not None:  # DiffuseMix: which half is the real image's, and the fractal's weight
        line["edit"] = edit
    if variation is not None:  # GIF: the perturbation's noise, which draw was kept, whether the class guide took it
        line["variation"] = variation
    if score is not None:
        line["filter_score"] = score
    return line


def set_identity(config: GenerateConfig, info: GeneratorInfo, classes: list[str], templates: list[str], style_token,
                 style_sha256: str | None, adapters: Adapters | None, starts: RealStarts | None) -> SetIdentity:
    """The identity of the set a resolved config makes (see `SetIdentity`): the one place it is built."""
    return SetIdentity(
        dataset=config.dataset, classes=list(classes), generator=info.name, generator_fingerprint=info.fingerprint,
        templates=list(templates), negative_prompt=config.negative_prompt, style_token=style_token,
        style_sha256=style_sha256, guidance_scale=config.guidance_scale, steps=config.steps, scheduler=config.scheduler,
        timestep_spacing=config.timestep_spacing, height=config.height, width=config.width, dtype=config.dtype,
        seed=config.seed, blank_threshold=config.blank_threshold, filter=config.filter,
        filter_model=str(Path(config.filter_model).expanduser().resolve()) if config.filter else None,
        filter_arch=config.filter_arch if config.filter else None, max_retries=config.max_retries,
        image_format=config.image_format, quality=None if config.image_format == "png" else config.quality,
        save_size=config.save_size, lora=str(adapters.folder) if adapters else None,
        lora_sha256=adapters.sha256 if adapters else None, lora_scale=config.lora_scale if adapters else None,
        init_images=config.init_images, label_gamma=config.label_gamma if starts and starts.other else None,
        strength=starts.recorded_strength if starts else None,
        edits=list(config.edits) if config.edits else None,
        fractal_blend=config.fractal_blend if config.edits else None,
        variation_noise=config.variation_noise if info.varies else None,
        shots=config.shots if starts else None,
        shots_seed=config.shots_seed if starts and config.shots is not None else None)
