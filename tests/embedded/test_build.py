"""`build-generator`: the tokenizer, the --quick build as a plain diffusers folder, resumable and killable."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from synthbridge.cli import main
from synthbridge.embedded import build as build_lib
from synthbridge.embedded import corpus as corpus_lib
from synthbridge.embedded.assets import GENERATOR_DIR
from synthbridge.embedded.build import RECORD_FILE, GeneratorBuildConfig, build
from synthbridge.errors import UserError


def pipe_of(folder):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder)  # no extra arguments: the folder says everything
    pipe.set_progress_bar_config(disable=True)
    return pipe


def draw(pipe, prompt="a photo of the digit 7", seed=0):
    return pipe(prompt, num_inference_steps=2, height=32, width=32, output_type="np",
                generator=torch.Generator().manual_seed(seed)).images


# --- tokenizer ----------------------------------------------------------------------------------------------------

def test_tokenizer_roundtrip_from_its_folder(quick_generator):
    from transformers import CLIPTokenizer

    folder, _ = quick_generator
    assert (folder / "tokenizer" / "vocab.json").is_file() and (folder / "tokenizer" / "merges.txt").is_file()
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    ids = tokenizer("a photo of the digit 7").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.convert_ids_to_tokens(ids[1:-1]) == ["a</w>", "photo</w>", "of</w>", "the</w>", "digit</w>", "7</w>"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "a photo of the digit 7"
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"
    # Every caption word is one token; any other text still tokenizes, byte by byte, without <unk>.
    for word in corpus_lib.caption_words():
        assert len(tokenizer.tokenize(word)) == 1, word
    odd = tokenizer("zebra ⚡ x9").input_ids
    assert tokenizer.eos_token_id not in odd[1:-1] and len(odd) > 5
    assert len(tokenizer) == pipe_of(folder).text_encoder.config.vocab_size


# --- the built folder ---------------------------------------------------------------------------------------------

def test_quick_build_loads_with_plain_from_pretrained_and_runs_ddim_and_dpm(quick_generator, capfd):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    folder, record = quick_generator
    capfd.readouterr()
    pipe = pipe_of(folder)
    assert pipe.safety_checker is None and pipe.config.requires_safety_checker is False
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.relative_to(folder).as_posix(): p.stat().st_mode & 0o777 for p in [folder, *folder.rglob("*")]}
    assert modes == {k: (0o777 if k == "." or (folder / k).is_dir() else 0o666) & ~umask for k in modes}  # not 0700/0600
    assert "safety" not in capfd.readouterr().err.lower()  # diffusers warns when a checker is merely missing
    index = json.loads((folder / "model_index.json").read_text())
    assert index["safety_checker"] == [None, None] and index["requires_safety_checker"] is False
    for scheduler_class in (DDIMScheduler, DPMSolverMultistepScheduler):
        pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
        images = draw(pipe)
        assert images.shape == (1, 32, 32, 3) and np.isfinite(images).all()
    assert pipe.vae.config.scaling_factor == pytest.approx(record["build"]["vae"]["scaling_factor"])
    assert json.loads((folder / "scheduler" / "scheduler_config.json").read_text())["clip_sample"] is False
    # The build record and the defaults that `synthbridge generate` reads.
    saved = json.loads((folder / RECORD_FILE).read_text())
    assert {"guidance_scale", "num_inference_steps", "scheduler", "height", "width"} <= set(saved["defaults"])
    assert saved["build"]["config"]["seed"] == 1 and saved["build"]["corpus"]["real_data"].startswith("none")
    assert {"corpus", "vae", "unet", "total_build"} <= set(saved["build"]["seconds"])
    assert build_lib.read_defaults(folder)["height"] == 32
    assert saved["build"]["folder_bytes"] < 30e6


def test_textual_inversion_of_a_new_token(quick_generator):
    folder, _ = quick_generator
    pipe = pipe_of(folder)
    width = pipe.text_encoder.config.hidden_size
    rows = pipe.text_encoder.get_input_embeddings().weight.shape[0]
    embedding = torch.randn(width, generator=torch.Generator().manual_seed(0))
    pipe.load_textual_inversion({"<mnist-style>": embedding}, token="<mnist-style>")
    assert pipe.text_encoder.get_input_embeddings().weight.shape[0] == rows + 1
    token_id = pipe.tokenizer.convert_tokens_to_ids("<mnist-style>")
    assert torch.equal(pipe.text_encoder.get_input_embeddings().weight[token_id], embedding)
    assert token_id in pipe.tokenizer("a photo of the digit 7 in <mnist-style> style").input_ids
    assert draw(pipe, "a photo of the digit 7 in <mnist-style> style").shape == (1, 32, 32, 3)


def test_build_refuses_to_overwrite_without_the_flag(quick_generator, capsys):
    folder, _ = quick_generator
    before = (folder / RECORD_FILE).read_text()
    with pytest.raises(UserError, match="--overwrite"):
        build(GeneratorBuildConfig.quick(), folder, progress=False)
    code = main(["build-generator", "--quick", "--out", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and "already holds a generator" in err and len(err.strip().splitlines()) == 1
    assert (folder / RECORD_FILE).read_text() == before  # untouched
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


# --- the real generator (when it has been built) ------------------------------------------------------------------

@pytest.mark.skipif(not (GENERATOR_DIR / "model_index.json").is_file(), reason="generator not built")
def test_embedded_generator_loads_and_draws():
    pipe = pipe_of(GENERATOR_DIR)
    images = draw(pipe)
    assert images.shape == (1, 32, 32, 3) and np.isfinite(images).all()
    assert build_lib.read_defaults(GENERATOR_DIR)["guidance_scale"] >= 1


@pytest.mark.slow
def test_sigterm_stops_a_build_without_leaving_a_half_written_folder(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "generator"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "synthbridge", "build-generator", "--quick", "--unet-steps", "100000",
                             "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".generator.building-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGTERM)  # what kill, SLURM's time limit or a stopped demo send
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err.decode()
    assert list(tmp_path.iterdir()) == []  # neither the generator nor its temporary folder
