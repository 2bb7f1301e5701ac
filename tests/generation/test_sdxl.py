"""Tests of generation with a pipeline family other than Stable Diffusion 1.x: a tiny random SDXL (tests/helpers_sdxl.py).

Behaviour asserted: the folder is described from its files (family, its own sampler defaults) and loads through
diffusers' AutoPipelineForText2Image; an image is a function of its seed alone, bit-identical whatever its batch
neighbours (another class list, a resumed run, two shards, a regeneration alone); --scheduler swaps SDXL's
scheduler; a sampler option a family does not take is a one-line error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers_sdxl import write_flux_like_folder
from synthbridge.diffusion.pipeline import generator_info, load_generator
from synthbridge.diffusion.sampling import check_options
from synthbridge.errors import UserError
from synthbridge.generation import GenerateConfig, generate, regenerate_image
from synthbridge.io import read_jsonl


@pytest.fixture
def make_config(tiny_sdxl_path, tmp_path):
    def make(out="S", **overrides) -> GenerateConfig:
        values = dict(out=str(tmp_path / out), dataset="digits", generator=str(tiny_sdxl_path), per_class=2,
                      classes=("1", "3", "7"), steps=2, batch_size=4, show_progress=False)
        values.update(overrides)
        return GenerateConfig(**values)

    return make


def file_bytes(folder: str | Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).glob("*/*.png"))}


def test_an_sdxl_folder_is_described_from_its_files_and_loads_through_auto_pipeline(tiny_sdxl_path):
    import torch

    info = generator_info(str(tiny_sdxl_path))
    assert info.pipeline_class == "StableDiffusionXLPipeline" and not info.is_stable_diffusion
    assert info.native_size == 32 and info.vae_scale_factor == 2
    # SDXL's own defaults: its pipeline's guidance and steps, the scheduler its folder ships
    assert info.defaults == {"guidance_scale": 5.0, "steps": 50, "scheduler": "euler"}
    assert info.components["text_encoder_2"] == "CLIPTextModelWithProjection"
    pipe = load_generator(info, "fp32", torch.device("cpu"), quiet=True)
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"


def test_sdxl_images_depend_on_their_seed_alone(make_config, digits, tiny_sdxl_path, tmp_path):
    whole = generate(make_config(), bundle=digits)  # 6 images: a batch of 4, then 2 padded to 4
    assert whole["counts"]["images"] == 6 and whole["set"]["scheduler"] == "euler"
    assert whole["generator"]["pipeline"] == "StableDiffusionXLPipeline"
    made = file_bytes(whole["out"])
    lines = read_jsonl(Path(whole["out"]) / "manifest.jsonl")
    assert len({line["seed"] for line in lines}) == 6

    # class 7 alone: other batch neighbours, other positions in the batch, the same bytes
    alone = generate(make_config("alone", classes=("7",)), bundle=digits)
    assert file_bytes(alone["out"]) == {k: v for k, v in made.items() if k.startswith("7/")}
    # two shards into one folder make exactly what one run made
    for shard in ((0, 2), (1, 2)):
        generate(make_config("sharded", shard=shard), bundle=digits)
    assert file_bytes(tmp_path / "sharded") == made
    # an interrupted set (files and lines lost) is completed with the same bytes
    shutil.rmtree(tmp_path / "sharded" / "3")
    assert generate(make_config("sharded"), bundle=digits)["run"]["generated"] == 2
    assert file_bytes(tmp_path / "sharded") == made
    # one image made again, alone (in its padded batch shape): the file
    import io

    buffer = io.BytesIO()
    regenerate_image(whole["out"], "3", 1).save(buffer, format="PNG")
    assert buffer.getvalue() == made["3/00001.png"]


def test_scheduler_and_guidance_options_apply_where_the_family_takes_them(make_config, digits, tmp_path):
    dpm = generate(make_config("dpm", scheduler="dpm++", guidance_scale=2.0, per_class=1), bundle=digits)
    assert (dpm["set"]["scheduler"], dpm["set"]["guidance_scale"]) == ("dpm++", 2.0)
    native = generate(make_config("native", scheduler="native", per_class=1), bundle=digits)
    assert native["set"]["scheduler"] == "native"  # the folder's own Euler, as loaded
    euler = generate(make_config("euler", per_class=1), bundle=digits)
    assert file_bytes(native["out"]) == file_bytes(euler["out"])

    # a flow-matching family takes no DDPM-family sampler: refused from its files, before any weights load
    flux = write_flux_like_folder(tmp_path / "flux")
    assert generator_info(str(flux)).defaults["scheduler"] == "native"
    assert generator_info(str(flux)).native_size == 256  # diffusers' default 128 latent pixels x 2
    with pytest.raises(UserError, match="--scheduler ddim does not apply to FluxPipeline") as info:
        generate(make_config("flux", generator=str(flux), scheduler="ddim"), bundle=digits)
    assert "\n" not in str(info.value)

    class NoGuidance:  # a family whose __call__ takes neither guidance nor a negative prompt
        def __call__(self, prompt, num_inference_steps, height, width, generator, output_type):
            raise AssertionError("not called")

    check_options(NoGuidance(), None, guidance_given=False)  # nothing asked: nothing refused
    with pytest.raises(UserError, match="NoGuidance takes no guidance scale"):
        check_options(NoGuidance(), None, guidance_given=True)
    with pytest.raises(UserError, match="NoGuidance takes no negative prompt"):
        check_options(NoGuidance(), "blurry", guidance_given=False)
