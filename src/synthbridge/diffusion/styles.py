"""A learned dataset style on disk, and loading it into a pipeline.

A style folder holds:
    learned_embeds.safetensors  {token: tensor[dim]}, the format of diffusers' textual-inversion example,
                                so plain `pipe.load_textual_inversion(path, token=token)` loads it
    invert.json                 the token, initializer, generator, dataset, resolved config, loss curve, time
    checkpoint.pt               only while a run is unfinished: embedding, optimizer, step (for --resume)
    grid.png                    with --grid: real | plain prompt | style prompt, one row per class

In: a folder and a StableDiffusionPipeline. Out: the pipeline's tokenizer and text encoder know the
token. Anything missing or mismatched is a UserError naming the fix, never a fallback to plain prompts.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from synthbridge.errors import UserError
from synthbridge.io import atomic_path

STYLE_EMBEDS = "learned_embeds.safetensors"
STYLE_INFO = "invert.json"
CHECKPOINT = "checkpoint.pt"
GRID = "grid.png"


def save_embedding(path: str | Path, token: str, embedding: torch.Tensor) -> None:
    """Write {token: embedding} as safetensors, atomically (a crash never leaves half a file)."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({token: embedding.detach().to("cpu", torch.float32).contiguous()}, str(tmp))


def read_style(style_dir: str | Path) -> tuple[str, Path, dict]:
    """(token, embeddings file, invert.json contents) of a finished style folder, or a UserError naming the fix."""
    folder = Path(style_dir)
    if not folder.is_dir():
        raise UserError(f"style folder {str(folder)!r} does not exist; make it with `synthbridge invert --out {folder}`")
    embeds, info_file = folder / STYLE_EMBEDS, folder / STYLE_INFO
    unfinished = " (an unfinished run is there: continue it with `synthbridge invert ... --resume`)" \
        if (folder / CHECKPOINT).is_file() else ""
    if not embeds.is_file():
        raise UserError(f"style folder {str(folder)!r} has no {STYLE_EMBEDS}{unfinished}; pass a finished "
                        f"`synthbridge invert` folder (refusing to fall back to plain prompts)")
    if not info_file.is_file():
        raise UserError(f"style folder {str(folder)!r} has no {STYLE_INFO} (it names the token){unfinished}; "
                        f"pass a finished `synthbridge invert` folder")
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {info_file} ({exc}); rerun `synthbridge invert --overwrite` to rewrite it") from None
    token = info.get("token") if isinstance(info, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise UserError(f"{info_file} names no \"token\"; rerun `synthbridge invert --overwrite` to rewrite it")
    return token, embeds, info


def read_embedding(embeds: Path, token: str) -> torch.Tensor:
    """The one vector stored in a learned_embeds file (1-D, the text encoder's width)."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(embeds))
    except Exception as exc:  # noqa: BLE001  (a damaged file in any way)
        raise UserError(f"cannot read {embeds} ({str(exc).splitlines()[0][:160]}); "
                        f"rerun `synthbridge invert --overwrite`") from None
    if len(state) != 1:
        raise UserError(f"{embeds} holds {len(state)} tensors; a dataset style is one token's embedding")
    vector = next(iter(state.values()))
    if vector.dim() == 2 and vector.shape[0] == 1:
        vector = vector[0]
    if vector.dim() != 1:
        raise UserError(f"{embeds} holds a tensor of shape {tuple(vector.shape)}; expected one vector for {token!r}")
    return vector


def load_style(pipe, style_dir: str | Path) -> str:
    """Add the learned style token of `style_dir` to `pipe` (with diffusers' load_textual_inversion); return it.

    The embedding must have the width of the pipeline's text encoder: a style learned for another
    generator is an error, never silently skipped. A pipeline that already holds the token (reused in an
    experiment grid) is accepted only if its embedding equals the file's.
    """
    token, embeds, info = read_style(style_dir)
    vector = read_embedding(embeds, token)
    width = pipe.text_encoder.get_input_embeddings().weight.shape[1]
    if vector.shape[0] != width:
        learned_for = f" (generator {info['generator']!r})" if info.get("generator") else ""
        raise UserError(f"style {str(style_dir)!r} was learned for a text encoder of width {vector.shape[0]}"
                        f"{learned_for}, but this generator's is {width}; invert again with this generator")
    if token in pipe.tokenizer.get_vocab():
        row = pipe.text_encoder.get_input_embeddings().weight[pipe.tokenizer.convert_tokens_to_ids(token)]
        if not torch.equal(row.detach().to("cpu", torch.float32), vector.float()):
            raise UserError(f"the generator already has another embedding for {token!r}; load the generator afresh "
                            f"or invert with another --token")
        return token
    try:
        pipe.load_textual_inversion(str(embeds), token=token)
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"cannot load style {str(embeds)!r} into the generator ({first_line})") from None
    return token
