"""Tests of style inversion beyond SD 1.x: SDXL's two text encoders (tests/helpers_sdxl.py), families that cannot
be inverted, the grid's resolution and steps, and a quiet `load_style`.

Behaviour asserted: on SDXL the token is learned in both text encoders (only the new rows change, the UNet and VAE
stay bit-identical), saved as learned_embeds.safetensors and learned_embeds_2.safetensors that plain diffusers'
load_textual_inversion reads into each encoder; `generate --style` on SDXL uses it; a style learned for the other
number of encoders is refused; a family without CLIP text encoders where SD keeps them is one line naming it;
`--grid` samples at --resolution with at most 25 steps; loading a style prints no transformers notice.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import synthbridge.diffusion.finetune as finetune
from helpers_sdxl import write_flux_like_folder
from synthbridge.cli import main
from synthbridge.diffusion.styles import load_style
from synthbridge.errors import UserError
from synthbridge.generation import GenerateConfig, generate
from synthbridge.inversion import InvertConfig, invert, style_grid
from synthbridge.io import read_jsonl

TOKEN = "<digits-style>"


@pytest.fixture
def make_config(tiny_sdxl_path, tmp_path):
    def make(out="style", **overrides) -> InvertConfig:
        values = dict(out=str(tmp_path / out), dataset="digits", generator=str(tiny_sdxl_path), shots=1,
                      initializer_word="photo", steps=3, batch_size=4, show_progress=False)
        values.update(overrides)
        return InvertConfig(**values)

    return make


def fresh_sdxl(path: Path):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(str(path))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def test_sdxl_token_is_learned_in_both_encoders_and_loads_with_plain_diffusers(make_config, tiny_sdxl_path, digits):
    pipe = fresh_sdxl(tiny_sdxl_path)
    unet, vae = snapshot(pipe.unet), snapshot(pipe.vae)
    tables = [pipe.text_encoder.get_input_embeddings(), pipe.text_encoder_2.get_input_embeddings()]
    old = [table.weight.detach().clone() for table in tables]
    initializer = pipe.tokenizer.convert_tokens_to_ids("photo</w>")

    summary = invert(make_config(lr=0.05), pipeline=pipe, bundle=digits)

    assert summary["text_encoders"] == 2 and summary["embedding_dims"] == [16, 24]
    assert summary["files"]["embeddings_2"] == "learned_embeds_2.safetensors"
    assert all(torch.equal(unet[k], v) for k, v in pipe.unet.state_dict().items())
    assert all(torch.equal(vae[k], v) for k, v in pipe.vae.state_dict().items())
    out = Path(summary["config"]["out"])
    learned = [load_file(str(out / name))[TOKEN] for name in ("learned_embeds.safetensors", "learned_embeds_2.safetensors")]
    for table, before, vector in zip((pipe.text_encoder.get_input_embeddings(), pipe.text_encoder_2.get_input_embeddings()),
                                     old, learned):
        weight = table.weight.detach()
        assert weight.shape[0] == before.shape[0] + 1
        assert torch.equal(weight[:-1], before)  # every old row, bit for bit
        assert torch.equal(weight[-1], vector)  # the new row is the saved vector
        assert not torch.equal(vector, before[initializer])  # and it was trained away from the initializer

    # plain diffusers, as for any SDXL textual inversion: one call per text encoder
    plain = fresh_sdxl(tiny_sdxl_path)
    plain.load_textual_inversion(str(out / "learned_embeds.safetensors"), token=TOKEN)
    plain.load_textual_inversion(str(out / "learned_embeds_2.safetensors"), token=TOKEN,
                                 text_encoder=plain.text_encoder_2, tokenizer=plain.tokenizer_2)
    for tokenizer, encoder, vector in ((plain.tokenizer, plain.text_encoder, learned[0]),
                                       (plain.tokenizer_2, plain.text_encoder_2, learned[1])):
        row = encoder.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(TOKEN)]
        assert torch.equal(row.detach(), vector)


def test_generate_with_an_sdxl_style_uses_the_token(make_config, tiny_sdxl_path, tiny_sd_path, digits, tmp_path):
    style = invert(make_config(lr=0.05), bundle=digits)["config"]["out"]
    base = dict(dataset="digits", generator=str(tiny_sdxl_path), per_class=1, classes=("7",), steps=2, batch_size=2,
                show_progress=False)
    styled = generate(GenerateConfig(out=str(tmp_path / "styled"), style=style, **base), bundle=digits)
    plain = generate(GenerateConfig(out=str(tmp_path / "plain"), templates=("a photo of the {class}",), **base),
                     bundle=digits)
    line = read_jsonl(tmp_path / "styled" / "manifest.jsonl")[0]
    assert TOKEN in line["prompt"] and line["style_token"] == TOKEN
    assert styled["set"]["style_sha256"] and len(styled["set"]["style_sha256"]) == 64
    assert (tmp_path / "styled" / "7" / "00000.png").read_bytes() != (tmp_path / "plain" / "7" / "00000.png").read_bytes()
    assert plain["counts"]["images"] == 1
    assert style_grid(style, out=tmp_path / "grid.png", per_class=1, steps=2, bundle=digits).is_file()  # SDXL grid

    # a style learned for SDXL's two encoders does not go into SD's one
    from diffusers import StableDiffusionPipeline

    sd = StableDiffusionPipeline.from_pretrained(str(tiny_sd_path), safety_checker=None, requires_safety_checker=False)
    with pytest.raises(UserError, match=r"learned for 2 text encoder\(s\).*StableDiffusionPipeline has 1"):
        load_style(sd, style)


def test_sdxl_resume_gives_the_same_embeddings_as_an_uninterrupted_run(make_config, digits, monkeypatch):
    names = ("learned_embeds.safetensors", "learned_embeds_2.safetensors")
    whole = Path(invert(make_config("whole", steps=4, checkpoint_every=2), bundle=digits)["config"]["out"])
    real_loss, calls = finetune.denoising_loss, []

    def crash_at_step_4(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    config = make_config("interrupted", steps=4, checkpoint_every=2)
    monkeypatch.setattr(finetune, "denoising_loss", crash_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        invert(config, bundle=digits)
    monkeypatch.setattr(finetune, "denoising_loss", real_loss)
    assert invert(config, bundle=digits, resume=True)["resumed_from_step"] == 2
    for name in names:  # both encoders' vectors continue exactly
        assert torch.equal(load_file(str(Path(config.out) / name))[TOKEN], load_file(str(whole / name))[TOKEN])


def test_a_family_that_cannot_be_inverted_is_one_line_naming_it(tmp_path, capsys, digits):
    flux = write_flux_like_folder(tmp_path / "flux")
    code = main(["invert", "--dataset", "digits", "--generator", str(flux), "--out", str(tmp_path / "style"),
                 "--steps", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot be learned for FluxPipeline" in err and "text_encoder_2=T5EncoderModel" in err
    # generate --style refuses it before loading any weights too
    (tmp_path / "sd-style").mkdir()
    (tmp_path / "sd-style" / "invert.json").write_text('{"token": "<s>"}')
    from safetensors.torch import save_file

    save_file({"<s>": torch.zeros(16)}, str(tmp_path / "sd-style" / "learned_embeds.safetensors"))
    with pytest.raises(UserError, match="cannot be learned for FluxPipeline"):
        generate(GenerateConfig(out=str(tmp_path / "S"), dataset="digits", generator=str(flux), per_class=1,
                                style=str(tmp_path / "sd-style"), show_progress=False), bundle=digits)


def test_grid_samples_at_the_resolution_with_few_steps(tiny_sd_path, tmp_path, monkeypatch, digits):
    import synthbridge.diffusion.sampling as sampling

    real_render, calls = sampling.render, []

    def recording_render(pipe, prompts, seeds, **kwargs):
        calls.append((kwargs["steps"], kwargs["height"], kwargs["width"]))
        return real_render(pipe, prompts, seeds, **kwargs)

    monkeypatch.setattr(sampling, "render", recording_render)
    config = InvertConfig(out=str(tmp_path / "style"), dataset="digits", generator=str(tiny_sd_path), shots=1,
                          initializer_word="photo", steps=1, batch_size=4, resolution=8, grid=True, show_progress=False)
    invert(config, bundle=digits)
    assert (tmp_path / "style" / "grid.png").is_file()
    # the tiny SD folder defaults to SD's 50 steps; the grid takes at most 25, at the inversion's 8 pixels
    assert calls and set(calls) == {(25, 8, 8)}


def test_loading_a_style_prints_no_transformers_notice(tiny_sd_path, tmp_path):
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file
    from transformers.utils import logging as transformers_logging

    notices: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notices.append(record.getMessage())

    library_log = logging.getLogger("transformers.modeling_utils")
    handler = Collect()
    library_log.addHandler(handler)
    load = lambda: StableDiffusionPipeline.from_pretrained(str(tiny_sd_path), safety_checker=None,
                                                            requires_safety_checker=False)
    try:
        transformers_logging.warning_once.cache_clear()  # the notice is printed once per process
        load().text_encoder.resize_token_embeddings(1000)  # control: a plain resize does print it here
        assert any("multivariate normal" in n for n in notices)
        notices.clear()
        transformers_logging.warning_once.cache_clear()
        style = tmp_path / "style"
        style.mkdir()
        save_file({"<s>": torch.randn(16)}, str(style / "learned_embeds.safetensors"))
        (style / "invert.json").write_text('{"token": "<s>"}')
        pipe = load()
        assert load_style(pipe, style) == "<s>"
        assert "<s>" in pipe.tokenizer.get_vocab()
        assert not any("multivariate normal" in n for n in notices), notices
    finally:
        library_log.removeHandler(handler)
        transformers_logging.warning_once.cache_clear()
