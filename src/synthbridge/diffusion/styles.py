"""A learned dataset style on disk, and loading it into a pipeline.

A style folder holds:
    learned_embeds.safetensors  {token: tensor[dim]}, the format of diffusers' textual-inversion example,
                                so plain `pipe.load_textual_inversion(path, token=token)` loads it
    learned_embeds_2.safetensors  SDXL only: the token's vector for the second text encoder, as diffusers'
                                textual_inversion_sdxl example writes it; loaded with
                                `pipe.load_textual_inversion(path, token=token, text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)`
    invert.json                 the token, initializer, generator, dataset, resolved config, loss curve, time
    checkpoint.pt               only while a run is unfinished: embedding, optimizer, step (for --resume)
    grid.png                    with --grid: real | plain prompt | style prompt, one row per class

A per-class folder (`synthbridge invert --per-class`, DA-Fusion's form: one token per class) holds instead of
learned_embeds*.safetensors:
    classes/<safe_name(class)>.safetensors  {token: tensor[dim]} of one class, e.g. {"<class-7>": ...}; plain
                                `pipe.load_textual_inversion([file, ...])` loads them all
    invert.json                 "per_class": true, "tokens": {class: token}, "files": {class: "classes/....safetensors"},
                                "template": the prompt the tokens were learned in, its {class} where the token goes

In: a folder and a Stable Diffusion 1.x/2.x or SDXL pipeline. Out: the pipeline's tokenizer(s) and text
encoder(s) know the token. Anything missing or mismatched is a UserError naming the fix, never a fallback to
plain prompts. Which families a token can go into is `text_encoder_slots` (CLIP tokenizer and text encoder where
SD and SDXL keep them); any other family is a one-line UserError naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from synthbridge.diffusion.finetune import CHECKPOINT  # an unfinished inversion's checkpoint (the loop's)
from synthbridge.errors import UserError
from synthbridge.io import atomic_path, safe_name

STYLE_EMBEDS = "learned_embeds.safetensors"
STYLE_EMBEDS_2 = "learned_embeds_2.safetensors"  # the second text encoder's vector (SDXL)
EMBED_FILES = (STYLE_EMBEDS, STYLE_EMBEDS_2)  # one per text encoder, in the order of TEXT_ENCODER_SLOTS
TEXT_ENCODER_SLOTS = (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))
CLIP_TOKENIZERS = ("CLIPTokenizer", "CLIPTokenizerFast")
CLIP_TEXT_ENCODERS = ("CLIPTextModel", "CLIPTextModelWithProjection")
CLASS_DIR = "classes"  # per-class folders: one embedding file per class in here
STYLE_INFO = "invert.json"
GRID = "grid.png"


def class_file(class_name: str) -> str:
    """The embedding file of a class in a per-class folder, relative to it: 'classes/<safe_name(class)>.safetensors'."""
    return f"{CLASS_DIR}/{safe_name(class_name)}.safetensors"


def save_embedding(path: str | Path, token: str, embedding: torch.Tensor) -> None:
    """Write {token: embedding} as safetensors, atomically (a crash never leaves half a file)."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({token: embedding.detach().to("cpu", torch.float32).contiguous()}, str(tmp))


def text_encoder_slots(family: str, components: dict[str, str | None]) -> list[tuple[str, str]]:
    """The (tokenizer, text encoder) component names a style token goes into: one pair for SD 1.x/2.x, two for
    SDXL. `components`: component name -> class name (model_index.json, or a loaded pipeline's). A family
    without CLIP tokenizers and text encoders in those places and a UNet (SD 3, PixArt, FLUX, ...) is a
    UserError naming it."""
    slots = [(tok, enc) for tok, enc in TEXT_ENCODER_SLOTS if components.get(tok) or components.get(enc)]
    clip = all(components.get(tok) in CLIP_TOKENIZERS and components.get(enc) in CLIP_TEXT_ENCODERS for tok, enc in slots)
    others = [name for name, cls in components.items() if cls and name.startswith("text_encoder")
              and name not in {enc for _, enc in TEXT_ENCODER_SLOTS}]
    if not slots or slots[0][0] != "tokenizer" or not clip or others or components.get("unet") != "UNet2DConditionModel":
        found = ", ".join(f"{name}={components.get(name)}" for name in ("unet", "transformer", "text_encoder",
                                                                         "text_encoder_2", "text_encoder_3")
                          if components.get(name))
        raise UserError(f"a style token cannot be learned for {family} ({found}): style inversion needs the CLIP "
                        f"tokenizer/text_encoder (and tokenizer_2/text_encoder_2) and UNet of Stable Diffusion 1.x/2.x or "
                        f"SDXL; use such a generator")
    return slots


def style_encoders(pipe) -> list[tuple[object, torch.nn.Module]]:
    """The loaded (tokenizer, text encoder) pairs of `pipe` a style token goes into (see `text_encoder_slots`)."""
    components = {name: type(module).__name__ for name, module in pipe.components.items() if module is not None}
    slots = text_encoder_slots(type(pipe).__name__, components)
    return [(getattr(pipe, tok), getattr(pipe, enc)) for tok, enc in slots]


def style_files(style_dir: str | Path) -> list[Path]:
    """The embedding files of a style folder: one per text encoder it was learned for (SD: 1, SDXL: 2), or, for a
    per-class folder, one per class in the order of invert.json's "files" (present or not: `read_style` checks)."""
    folder = Path(style_dir)
    info = _peek_info(folder)
    if info.get("per_class"):
        files = info.get("files")
        return [folder / name for name in files.values()] if isinstance(files, dict) else []
    return [folder / STYLE_EMBEDS] + ([folder / STYLE_EMBEDS_2] if (folder / STYLE_EMBEDS_2).is_file() else [])


def _peek_info(folder: Path) -> dict:
    """invert.json if it is there and readable, else {} (the callers that need it raise through `read_style`)."""
    try:
        info = json.loads((folder / STYLE_INFO).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def style_digest(files: list[Path]) -> str:
    """The identity of a style's embeddings: one file's sha256 (as before SDXL), or the sha256 of each file's."""
    from synthbridge.diffusion.pipeline import file_sha256

    digests = [file_sha256(file) for file in files]
    return digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()


@contextlib.contextmanager
def quiet_embedding_resize() -> Iterator[None]:
    """Silence transformers' "new embeddings will be initialized from a multivariate normal distribution" notice
    for one call: diffusers' load_textual_inversion resizes the embeddings with mean_resizing on and then
    overwrites the new row with the learned vector, so the notice only alarms the user."""
    library_log = logging.getLogger("transformers.modeling_utils")
    level = library_log.level
    library_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        library_log.setLevel(level)


def read_style(style_dir: str | Path) -> tuple[str, Path, dict]:
    """(token, embeddings file, invert.json contents) of a finished style folder, or a UserError naming the fix.

    A per-class folder (checked whole: every class's file present) gives its first class's token and file; use
    `class_tokens` for all of them."""
    folder = Path(style_dir)
    info = _read_info(folder)
    if info.get("per_class"):
        tokens = class_tokens(folder)
        first = next(iter(tokens))
        return tokens[first], folder / info["files"][first], info
    embeds = folder / STYLE_EMBEDS
    if not embeds.is_file():
        raise UserError(f"style folder {str(folder)!r} has no {STYLE_EMBEDS}{_unfinished(folder)}; pass a finished "
                        f"`synthbridge invert` folder (refusing to fall back to plain prompts)")
    token = info.get("token")
    if not isinstance(token, str) or not token.strip():
        raise UserError(f"{folder / STYLE_INFO} names no \"token\"; rerun `synthbridge invert --overwrite` to rewrite it")
    return token, embeds, info


def class_tokens(style_dir: str | Path, classes: Sequence[str] | None = None) -> dict[str, str] | None:
    """{class name: token} of a per-class style folder (`invert --per-class`), None for a dataset-wise one.

    Every class's embedding file must be there; `classes` (the dataset's class names), when given, must be the
    classes the tokens were learned for. Anything else is a UserError naming the fix."""
    folder = Path(style_dir)
    info = _read_info(folder)
    if not info.get("per_class"):
        return None
    info_file = folder / STYLE_INFO
    tokens, files = info.get("tokens"), info.get("files")
    if (not isinstance(tokens, dict) or not tokens or not isinstance(files, dict) or set(files) != set(tokens)
            or not all(isinstance(t, str) and t.strip() for t in tokens.values())):
        raise UserError(f"{info_file} has no \"tokens\" and \"files\" for the same classes; rerun "
                        f"`synthbridge invert --per-class --overwrite` to rewrite it")
    if missing := [name for name in tokens if not (folder / files[name]).is_file()]:
        raise UserError(f"style folder {str(folder)!r} has no {files[missing[0]]} (the token of class {missing[0]!r})"
                        f"{_unfinished(folder)}; rerun `synthbridge invert --per-class --overwrite`")
    if classes is not None and set(classes) != set(tokens):
        lacking, extra = [c for c in classes if c not in tokens], [c for c in tokens if c not in set(classes)]
        differ = "; ".join(part for part in (f"no token for {', '.join(map(repr, lacking[:3]))}" if lacking else "",
                                            f"tokens for {', '.join(map(repr, extra[:3]))} not in it" if extra else "")
                           if part)
        raise UserError(f"style {str(folder)!r} was learned for {len(tokens)} classes of {info.get('dataset')!r}, "
                        f"not this dataset's {len(classes)} ({differ}); invert --per-class on this dataset")
    return dict(tokens)


def _unfinished(folder: Path) -> str:
    return " (an unfinished run is there: continue it with `synthbridge invert ... --resume`)" \
        if (folder / CHECKPOINT).is_file() else ""


def _read_info(folder: Path) -> dict:
    """invert.json of a style folder, or a UserError naming the fix. A folder that diffusers' own textual inversion
    script wrote (learned_embeds.safetensors alone, {token: vector}) gives the token its file names."""
    if not folder.is_dir():
        raise UserError(f"style folder {str(folder)!r} does not exist; make it with `synthbridge invert --out {folder}`")
    info_file = folder / STYLE_INFO
    if not info_file.is_file():
        if not (folder / STYLE_EMBEDS).is_file():  # nothing of a style there: name the file a finished run has first
            raise UserError(f"style folder {str(folder)!r} has no {STYLE_EMBEDS}{_unfinished(folder)}; pass a "
                            f"finished `synthbridge invert` folder (refusing to fall back to plain prompts)")
        if (folder / CHECKPOINT).is_file():
            raise UserError(f"style folder {str(folder)!r} has no {STYLE_INFO} (it names the token){_unfinished(folder)}; "
                            f"pass a finished `synthbridge invert` folder")
        return _plain_diffusers_info(folder / STYLE_EMBEDS)
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot read {info_file} ({first}); rerun `synthbridge invert --overwrite` to rewrite it") from None
    if not isinstance(info, dict):
        raise UserError(f"{info_file} names no \"token\"; rerun `synthbridge invert --overwrite` to rewrite it")
    return info


def _plain_diffusers_info(embeds: Path) -> dict:
    """The record of a plain embedding file as diffusers' `textual_inversion.py` saves it: one tensor, named by its
    token ("<cat-toy>"). A file whose one name is no token (A1111's "emb_params") is a UserError naming the fix."""
    from safetensors import safe_open

    try:
        with safe_open(str(embeds), framework="pt") as handle:
            names = list(handle.keys())
    except Exception as exc:  # noqa: BLE001  (a damaged file in any way)
        raise UserError(f"cannot read {embeds} ({str(exc).splitlines()[0][:160]}); pass a learned embedding file") from None
    if len(names) != 1 or names[0] in ("emb_params", "string_to_param") or not names[0].strip():
        raise UserError(f"{embeds} names no token (it holds {', '.join(map(repr, names[:3]))}); save it the way "
                        f"diffusers' textual_inversion.py does, {{token: vector}}, or learn one with `synthbridge invert`")
    return {"token": names[0], "origin": "a plain embedding file (diffusers' textual_inversion.py)"}


def read_embedding(embeds: Path, token: str) -> torch.Tensor:
    """The one vector stored in a learned_embeds file (1-D, the text encoder's width)."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(embeds))
    except Exception as exc:  # noqa: BLE001  (a damaged file in any way)
        raise UserError(f"cannot read {embeds} ({str(exc).splitlines()[0][:160]}); "
                        f"rerun `synthbridge invert --overwrite`") from None
    if len(state) != 1:
        raise UserError(f"{embeds} holds {len(state)} tensors; a style file is one token's embedding")
    vector = next(iter(state.values()))
    if vector.dim() == 2 and vector.shape[0] == 1:
        vector = vector[0]
    if vector.dim() != 1:
        raise UserError(f"{embeds} holds a tensor of shape {tuple(vector.shape)}; expected one vector for {token!r}")
    return vector


def load_style(pipe, style_dir: str | Path) -> str | dict[str, str]:
    """Add the learned style token of `style_dir` to `pipe` (with diffusers' load_textual_inversion, into each
    text encoder it was learned for: SDXL's two); return it. A per-class folder: every class's token, in one
    load_textual_inversion call; returns {class name: token} (`class_tokens`).

    The embeddings must have the widths of the pipeline's text encoders: a style learned for another
    generator is an error, never silently skipped. A pipeline that already holds a token (reused in an
    experiment grid) is accepted only if its embedding equals the file's.
    """
    token, _, info = read_style(style_dir)
    encoders = style_encoders(pipe)
    files = style_files(style_dir)
    per_class = class_tokens(style_dir)
    learned_for = f" (generator {info['generator']!r})" if info.get("generator") else ""
    if per_class is not None:  # all the class tokens go into the (one) text encoder
        if len(encoders) != 1:
            raise UserError(f"per-class style {str(style_dir)!r} was learned for one text encoder{learned_for}, but "
                            f"{type(pipe).__name__} has {len(encoders)}; invert again with this generator")
        loads = [(list(per_class.values()), files, *encoders[0])]
    elif len(files) != len(encoders):
        raise UserError(f"style {str(style_dir)!r} was learned for {len(files)} text encoder(s){learned_for}, but "
                        f"{type(pipe).__name__} has {len(encoders)}; invert again with this generator")
    else:
        loads = [([token], [file], tokenizer, text_encoder) for file, (tokenizer, text_encoder) in zip(files, encoders)]

    # every file is read and checked before anything is loaded: a refusal leaves the pipeline as it was
    vectors = [[read_embedding(file, name) for name, file in zip(names, paths)] for names, paths, _, _ in loads]
    for group, (_, paths, _, text_encoder) in zip(vectors, loads):
        width = text_encoder.get_input_embeddings().weight.shape[1]
        for vector in group:
            if vector.shape[0] != width:
                raise UserError(f"style {str(style_dir)!r} was learned for a text encoder of width {vector.shape[0]}"
                                f"{learned_for}, but this generator's is {width}; invert again with this generator")
    for group, (names, paths, tokenizer, text_encoder) in zip(vectors, loads):
        new_names, new_paths = [], []
        for name, path, vector in zip(names, paths, group):
            if name in tokenizer.get_vocab():
                row = text_encoder.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(name)]
                if not torch.equal(row.detach().cpu(), vector.to(row.dtype)):  # as the encoder holds it (fp16/bf16)
                    raise UserError(f"the generator already has another embedding for {name!r}; load the generator "
                                    f"afresh or invert with another --token")
                continue
            new_names.append(name)
            new_paths.append(str(path))
        if not new_names:
            continue
        try:
            with quiet_embedding_resize():
                pipe.load_textual_inversion(new_paths, token=new_names, tokenizer=tokenizer, text_encoder=text_encoder)
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise UserError(f"cannot load style {new_paths[0]!r} into the generator ({first_line})") from None
    return per_class if per_class is not None else token
