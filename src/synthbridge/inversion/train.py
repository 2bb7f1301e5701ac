"""`invert(config)`: dataset style inversion, one new token learned over a whole real training set (or, with
`per_class`, one token per class, learned jointly).

In: an `InvertConfig` (dataset, generator, token, initializer word, optimisation). Out: the style
folder described in `synthbridge.diffusion.styles` (learned_embeds.safetensors, invert.json) and a
summary dict (the content of invert.json).

Textual inversion as in diffusers' example, over all classes at once: the prompt of every image
names its class and the token (the study's "a digit 7 photo in the style of <mnist5k-style>"; for the
mini generator, its caption form "a photo of the digit 7, <mnist5k-style>"), so what the class does not
explain -- the look of the real dataset -- is what the token has to carry. The loss is the
denoising loss of the generator's own noise scheduler; every weight of the generator stays frozen and
the only trained tensor is the token's embedding vector. It is kept outside the embedding matrix and
put in place of the token's row by a forward hook, so the other rows cannot move (by construction, not by
restoring them after each step), and the optimizer state is one vector even for Stable Diffusion's
49,408-row vocabulary.

With `per_class` (DA-Fusion's form) class k learns its own token `<class-k>` (`config.CLASS_TOKEN`), which takes
the place of the class phrase in the dataset's plain prompt ("a photo of the digit 7" -> "a photo of the
<class-7>"). All K rows are trained in one run by one optimizer; a prompt holds only its own class's token, so
row k gets gradient from class k's images only. Each row starts as the mean embedding of its class name's tokens
(DA-Fusion's start): the class phrase without the words all phrases share ("digit 7" -> "7"), so a generator that
needs the class word to draw the class starts drawing it. The folder then holds
classes/<class>.safetensors, one token each (`diffusion.styles`); SD 1.x/2.x only.

SDXL has two text encoders: the token is added to both, with a vector in each (trained together, as
diffusers' textual_inversion_sdxl example does), and the UNet is conditioned as the SDXL pipeline
conditions it (both encoders' penultimate hidden states side by side, the second's pooled projection and
the six size/crop numbers). The second vector is saved as learned_embeds_2.safetensors. A family without
CLIP text encoders where SD and SDXL keep them is a one-line UserError (`diffusion.styles.text_encoder_slots`).

Every step is a function of (seed, step): which images (a seeded permutation per epoch), the VAE
sample, the noise and the timesteps. A run interrupted after a checkpoint and continued with
`resume=True` ends with the same embedding as a run never interrupted (on CUDA with `deterministic`: see
`diffusion.finetune`). The step loop, checkpoints and output-folder rule are `diffusion.finetune`'s, shared with LoRA.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import torch

from synthbridge.data import DatasetBundle, few_shot, load_dataset
from synthbridge.diffusion.finetune import (
    CHECKPOINT,
    Run,
    Trainable,
    fit,
    loss_curve,
    mismatch,
    prepare_folder,
    read_checkpoint,
    resume_record,
    window_mean,
)
from synthbridge.diffusion.pipeline import device_of
from synthbridge.diffusion.styles import (
    CLASS_DIR,
    EMBED_FILES,
    GRID,
    STYLE_EMBEDS,
    STYLE_INFO,
    class_file,
    save_embedding,
    style_encoders,
    style_files,
    text_encoder_slots,
)
from synthbridge.errors import UserError
from synthbridge.inversion.config import (
    INITIALIZER_CANDIDATES,
    RESUME_KEYS,
    InvertConfig,
    class_token,
    resolve,
)
from synthbridge.io import FORMAT, check_format, ensure_writable_dir, environment, read_json, write_json
from synthbridge.prompts import build_prompt, resolve_template

log = logging.getLogger(__name__)

CHECKPOINT_VECTORS = ("embedding", "embedding_2")  # checkpoint keys of the vectors, one per text encoder


def invert(config: InvertConfig, *, resume: bool = False, overwrite: bool = False, pipeline=None,
           bundle: DatasetBundle | None = None) -> dict:
    """Learn the style token of `config.dataset` (or, `config.per_class`, one token per class) into `config.out`;
    returns the summary (invert.json).

    `pipeline`: an already loaded SD 1.x/2.x or SDXL pipeline for `config.generator` (its tokenizer(s) and
    text encoder(s) gain the token, with the learned embedding, in place). `bundle`: the dataset, if loaded.
    `resume`: continue an interrupted run in `config.out` (or return a finished one with the same config).
    `overwrite`: delete what `config.out` holds and start afresh.
    """
    from synthbridge.diffusion.pipeline import generator_info, open_generator, torch_dtype

    began = time.perf_counter()

    # 1. check inputs: everything a user can get wrong fails here, before a model is loaded
    config.check()
    out = ensure_writable_dir(config.out, "style folder")
    prepare_folder(out, [out / name for name in (*EMBED_FILES, STYLE_INFO, CHECKPOINT, GRID, CLASS_DIR)],
                   resume=resume, overwrite=overwrite, what="style")
    device = device_of(config.device)
    torch_dtype(config.dtype, device)  # fp16/bf16 on the CPU is refused before anything loads
    info = generator_info(config.generator)  # a missing generator fails before the dataset is read
    slots = text_encoder_slots(info.pipeline_class, info.components)  # so does a family that cannot hold a token
    if config.per_class and len(slots) > 1:
        raise UserError(f"--per-class learns one token per class for Stable Diffusion 1.x/2.x (one text encoder); "
                        f"{info.name!r} is {info.pipeline_class} with {len(slots)}: use dataset-wise inversion for it")

    # 2. the real images: the whole train split (all classes together), or K per class
    if bundle is None:
        bundle = load_dataset(config.dataset, data_root=config.data_root, download=config.download)
    images = few_shot(bundle.train, config.shots, config.seed, bundle.classes) if config.shots else bundle.train

    # 3. the generator, and the config resolved against the profile and the generator's size
    pipe = open_generator(info, config.dtype, device, pipeline)
    encoders = style_encoders(pipe)  # [(tokenizer, text encoder)]: SD one, SDXL two
    config = resolve(config, info.native_size)
    if config.initializer_word is None and not config.per_class:
        config = dataclasses.replace(config, initializer_word=default_initializer(encoders[0][0]))
    if config.max_norm is None:  # the largest norm of any word the (first) text encoder was trained with
        config = dataclasses.replace(config, max_norm=round(vocabulary_norm(encoders[0][1]), 6))
    caps = norm_caps([encoder for _, encoder in encoders], config.max_norm)
    if resume and (out / STYLE_INFO).is_file():
        return _finished_run(out, config)
    record = resume_record(config, RESUME_KEYS)  # what a checkpoint, a finished folder and a rerun must match
    checkpoint = read_checkpoint(out / CHECKPOINT, record) if resume else None

    # 4. the new token(s), added to each tokenizer with new embedding rows: one initialised from the initializer
    #    word, or (per class) one per class initialised from its class name; each class's prompt ids
    tokens = [class_token(k) for k in range(bundle.num_classes)] if config.per_class else [config.token]
    if config.per_class:
        tokenizer, encoder = encoders[0]
        initializers = class_initializers(bundle.phrases)
        ids = [add_class_tokens(tokenizer, encoder, tokens, initializers)]
        input_ids = [class_token_prompt_ids(tokenizer, bundle, config.template, tokens, ids[0])]  # (classes, 77)
    else:
        added = [add_token(tokenizer, encoder, config.token, config.initializer_word) for tokenizer, encoder in encoders]
        ids = [[token_id] for token_id, _ in added]
        input_ids = [class_prompt_ids(tokenizer, bundle, config.template, config.token, token_id)  # (classes, 77) each
                     for (tokenizer, _), (token_id, _) in zip(encoders, added)]

    # 5. freeze the whole generator; the trained tensors are the new rows (rows, dim), one tensor per text encoder,
    #    each injected by a hook
    for module in (pipe.unet, pipe.vae, *(encoder for _, encoder in encoders)):
        module.requires_grad_(False)
        module.eval()  # no dropout: a step depends on (seed, step) only
    tables = [encoder.get_input_embeddings() for _, encoder in encoders]
    vectors = [torch.nn.Parameter(table.weight[token_ids].detach().to(device, torch.float32).clone())
               for table, token_ids in zip(tables, ids)]
    initial_norms = [float(v) for v in vectors[0].detach().norm(dim=1)]
    hooks = [table.register_forward_hook(_inject(token_ids, vector)) for table, token_ids, vector
             in zip(tables, ids, vectors)]

    # 6-7. the loop (`diffusion.finetune`): AdamW on the rows, each projected back under its cap after every step;
    #      step s draws its images, latent sample, noise and timesteps from derive_seed(seed, "invert", "step", s)
    def project() -> None:  # each row within the norm of the words it sits among
        for vector, cap in zip(vectors, caps):
            if cap:
                vector.mul_(torch.clamp(cap / vector.norm(dim=1, keepdim=True).clamp_min(1e-12), max=1.0))

    def load(state: dict) -> None:
        with torch.no_grad():
            for vector, key in zip(vectors, CHECKPOINT_VECTORS):
                vector.copy_(state[key].to(device))

    trainable = Trainable(params=vectors, lr=config.lr, schedule=config.lr_schedule,  # no decay: it would shrink them
                          warmup_steps=config.lr_warmup_steps, project=project, load=load,
                          state=lambda: {key: v.detach().cpu().clone() for key, v in zip(CHECKPOINT_VECTORS, vectors)})
    run = Run(images=images, input_ids=input_ids, batch_size=config.batch_size, resolution=config.resolution,
              steps=config.steps, seed=config.seed, stream=("invert",), out=out, record=record,
              checkpoint_every=config.checkpoint_every, label="invert", show_progress=config.show_progress,
              gradient_checkpointing=config.gradient_checkpointing, deterministic=config.deterministic)
    try:
        result = fit(pipe, trainable, run, checkpoint)
    finally:
        for hook in hooks:
            hook.remove()
    start, losses, train_seconds = result.resumed_from_step, result.losses, result.train_seconds
    seconds_before = float(checkpoint["seconds"]) if checkpoint is not None else 0.0

    # 8. save: the learned rows go into the text encoders (the pipeline now draws the style), the files
    # in diffusers' format (one per text encoder; per class, one per class), and invert.json; the checkpoint
    # is no longer needed
    with torch.no_grad():
        for table, token_ids, vector in zip(tables, ids, vectors):
            table.weight[token_ids] = vector.detach().to(table.weight.dtype)
    learned_norms = [float(v) for v in vectors[0].detach().norm(dim=1)]
    summary = {
        "format": FORMAT, "per_class": config.per_class, "token": config.token,
        "initializer_word": config.initializer_word,
        "generator": info.name, "generator_fingerprint": info.fingerprint, "dataset": config.dataset,
        "template": resolve_template(config.template), "num_images": len(images), "num_classes": bundle.num_classes,
        "embedding_dim": int(vectors[0].shape[1]), "config": config.to_dict(), "steps": config.steps,
        "final_loss": window_mean(losses, len(losses)), "loss_curve": loss_curve(losses),
        "embedding_norm": {"initializer": initial_norms[0], "learned": learned_norms[0]},
        "seconds": 0.0, "train_seconds": train_seconds, "resumed_from_step": start,
        "files": {"embeddings": STYLE_EMBEDS, "grid": GRID if config.grid else None},
        "text_encoders": len(encoders),
        "environment": environment(),
    }
    if config.per_class:  # the format `diffusion.styles.class_tokens` reads: class -> token, class -> file
        (out / CLASS_DIR).mkdir(exist_ok=True)
        for name, token, vector in zip(bundle.classes, tokens, vectors[0]):
            save_embedding(out / class_file(name), token, vector)
        summary.update({
            "tokens": dict(zip(bundle.classes, tokens)),
            "files": {name: class_file(name) for name in bundle.classes},
            "grid": GRID if config.grid else None,
            "initializers": dict(zip(bundle.classes, initializers)),  # each row started as these words' mean
            "embedding_norm": {"initializer": dict(zip(bundle.classes, initial_norms)),
                               "learned": dict(zip(bundle.classes, learned_norms))},
            "images_per_class": {name: sum(1 for t in images.targets if t == k) for k, name in enumerate(bundle.classes)},
        })
    else:
        for name, vector in zip(EMBED_FILES, vectors):
            save_embedding(out / name, config.token, vector[0])
    summary["seconds"] = seconds_before + time.perf_counter() - began
    if len(encoders) > 1:  # SDXL: the second encoder's file and vector
        summary["files"]["embeddings_2"] = EMBED_FILES[1]
        summary["embedding_dims"] = [int(v.shape[1]) for v in vectors]
        summary["embedding_norms_learned"] = [float(v.detach().norm()) for v in vectors]
        summary["norm_caps"] = caps
    write_json(out / STYLE_INFO, summary)
    (out / CHECKPOINT).unlink(missing_ok=True)

    # 9. optionally, a look at the result: real | plain prompt | style prompt, one row per class
    if config.grid:
        from synthbridge.inversion.grid import style_grid

        style_grid(out, pipeline=pipe, bundle=bundle, real_images=images, seed=config.seed, resolution=config.resolution)
    return summary


# --- the pieces of the steps above -----------------------------------------------------------------------------

def single_token(tokenizer, word: str) -> int | None:
    """The id of `word` if the tokenizer knows it as one token, else None."""
    ids = tokenizer.encode(word, add_special_tokens=False)
    return ids[0] if len(ids) == 1 and ids[0] != tokenizer.unk_token_id else None


def default_initializer(tokenizer) -> str:
    """The word "style" where the tokenizer knows it (SD's CLIP does), else the first neutral word it knows."""
    for word in INITIALIZER_CANDIDATES:
        if single_token(tokenizer, word) is not None:
            return word
    raise UserError(f"this generator's tokenizer knows none of {', '.join(INITIALIZER_CANDIDATES)} as one token; "
                    f"pass --initializer-word with a word it knows")


def add_token(tokenizer, text_encoder, token: str, initializer_word: str) -> tuple[int, int]:
    """Add `token` to the tokenizer and a row for it to the text encoder, initialised from `initializer_word`.

    Returns (token id, initializer id). The token must be new (not an entry, nor a whole word, of the
    vocabulary: it would change the meaning of prompts that use that word); the initializer must be a
    single known token.
    """
    vocab = tokenizer.get_vocab()
    if token in vocab or f"{token}</w>" in vocab:
        raise UserError(f"token {token!r} is already in the generator's vocabulary; choose another --token, "
                        f"e.g. '<{token.strip('<>')}-style>'")
    initializer_id = single_token(tokenizer, initializer_word)
    if initializer_id is None:
        pieces = len(tokenizer.encode(initializer_word, add_special_tokens=False))
        known = [w for w in INITIALIZER_CANDIDATES if single_token(tokenizer, w) is not None and w != initializer_word]
        hint = f", e.g. {', '.join(map(repr, known[:3]))}" if known else ""
        raise UserError(f"initializer word {initializer_word!r} is {pieces} tokens in this generator's tokenizer, "
                        f"not one known token; pass --initializer-word with a single-token word{hint}")
    tokenizer.add_tokens(token)
    token_id = tokenizer.convert_tokens_to_ids(token)
    weight = text_encoder.get_input_embeddings().weight
    if token_id >= weight.shape[0]:
        # mean_resizing=False: the new row is set from the initializer below, and the mean/covariance
        # initialisation transformers offers costs seconds over a 49k-row vocabulary.
        text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    weight = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        weight[token_id] = weight[initializer_id]
    return token_id, initializer_id


def class_initializers(phrases: list[str]) -> list[str]:
    """The words each class token starts from: its class phrase without the words every class's phrase shares
    ('digit 7' -> '7'; 'Boeing 737-300' stays whole), or the whole phrase where nothing would be left. The shared
    word says nothing about the class, and on the mini generator the mean of 'digit' and '3' drew 2s."""
    shared = set.intersection(*(set(phrase.split()) for phrase in phrases)) if len(phrases) > 1 else set()
    return [" ".join(word for word in phrase.split() if word not in shared) or phrase for phrase in phrases]


def add_class_tokens(tokenizer, text_encoder, tokens: list[str], initializers: list[str]) -> list[int]:
    """Add one token per class (`tokens[k]` for the class named `initializers[k]`) to the tokenizer, with a row each
    in the text encoder, set to the mean embedding of the name's tokens (DA-Fusion's initialisation from the class
    name). Returns the tokens' ids, in order. No token may already be known."""
    vocab = tokenizer.get_vocab()
    if known := [token for token in tokens if token in vocab or f"{token}</w>" in vocab]:
        raise UserError(f"token {known[0]!r} is already in the generator's vocabulary; --per-class needs its class "
                        f"tokens new: load the generator afresh")
    phrase_ids = [tokenizer.encode(words, add_special_tokens=False) for words in initializers]
    if empty := [words for words, ids in zip(initializers, phrase_ids) if not ids]:
        raise UserError(f"class name {empty[0]!r} has no tokens to start its class token from")
    tokenizer.add_tokens(tokens)
    token_ids = tokenizer.convert_tokens_to_ids(tokens)
    if len(tokenizer) > text_encoder.get_input_embeddings().weight.shape[0]:
        text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # rows set below (see add_token)
    weight = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        for token_id, ids in zip(token_ids, phrase_ids):
            weight[token_id] = weight[ids].float().mean(dim=0).to(weight.dtype)
    return token_ids


def vocabulary_norm(text_encoder) -> float:
    """The largest L2 norm among a text encoder's token embeddings."""
    return float(text_encoder.get_input_embeddings().weight.detach().float().norm(dim=1).max())


def norm_caps(text_encoders: list, max_norm: float) -> list[float]:
    """The norm cap of each encoder's vector: `max_norm` for the first; for SDXL's second, `max_norm` scaled by the
    ratio of the two vocabularies' largest norms (so the default caps each vector at its own vocabulary's
    largest word). 0 (no cap) stays 0."""
    if not max_norm or len(text_encoders) == 1:
        return [max_norm] * len(text_encoders)
    first = vocabulary_norm(text_encoders[0])
    return [max_norm] + [round(max_norm * vocabulary_norm(encoder) / first, 6) for encoder in text_encoders[1:]]


def class_prompt_ids(tokenizer, bundle: DatasetBundle, template: str, token: str, token_id: int) -> torch.Tensor:
    """Token ids (classes, max_length) of each class's prompt, padded as the SD pipeline pads its prompts."""
    literal = resolve_template(template)
    if "{style}" not in literal:
        raise UserError(f"--template {template!r} has no {{style}}: the token would never be seen; "
                        f"e.g. 'a {{class}} photo in the style of {{style}}'")
    prompts = [build_prompt(literal, phrase, bundle.superclass, token) for phrase in bundle.phrases]
    return _prompt_ids(tokenizer, prompts, [token] * len(prompts), [token_id] * len(prompts))


def class_token_prompt_ids(tokenizer, bundle: DatasetBundle, template: str, tokens: list[str],
                           token_ids: list[int]) -> torch.Tensor:
    """--per-class: token ids (classes, max_length) of each class's prompt, its token in place of {class} (a template
    with {style} is refused by `InvertConfig.check`)."""
    prompts = [build_prompt(resolve_template(template), token, bundle.superclass) for token in tokens]
    return _prompt_ids(tokenizer, prompts, tokens, token_ids)


def _prompt_ids(tokenizer, prompts: list[str], tokens: list[str], token_ids: list[int]) -> torch.Tensor:
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    for prompt, row, token, token_id in zip(prompts, ids, tokens, token_ids):
        # A token the tokenizer splits or truncates away would train nothing: refuse rather than learn noise.
        if int((row == token_id).sum()) != 1:
            raise UserError(f"token {token!r} does not come through the tokenizer intact in {prompt!r}; "
                            f"use a short lower-case token and a shorter template")
    return ids


def _inject(token_ids: list[int], vectors: torch.Tensor):
    """A forward hook on the token-embedding layer: the positions of token_ids[r] get vectors[r] (differentiably)."""
    ids = torch.tensor(token_ids, device=vectors.device)

    def hook(module, args, output):
        match = args[0].unsqueeze(-1) == ids  # (B, L, rows)
        # A one-hot product, not indexing: its backward is a matmul, the same sums in the same order every run,
        # where indexing's scatter-add accumulates in thread order (two runs differed in the last bit). Exact in
        # the forward (1 * v plus zeros); positions of no new token get zeros and no gradient.
        rows = match.to(vectors.dtype) @ vectors  # (B, L, dim)
        return torch.where(match.any(dim=-1, keepdim=True), rows.to(output.dtype), output)

    return hook


# --- the style folder: refuse, replace or continue what is there --------------------------------------------

def _finished_run(out: Path, config: InvertConfig) -> dict:
    """--resume on a finished folder: nothing to do if it was made with the same parameters."""
    summary = read_json(out / STYLE_INFO)
    check_format(summary, out, "a style folder")
    mismatch(summary.get("config", {}), resume_record(config, RESUME_KEYS), out)
    if missing := [file for file in style_files(out) if not file.is_file()]:
        raise UserError(f"{str(out)!r} has {STYLE_INFO} but no {missing[0].relative_to(out).as_posix()}; pass "
                        f"--overwrite to learn it again")
    return summary
