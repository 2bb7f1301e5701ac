"""The embedded generator: corpus, tokenizer, the --quick build as a plain diffusers folder, fidelity."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from synthbridge.assets import GENERATOR_DIR
from synthbridge.cli import main
from synthbridge.errors import UserError
from synthbridge.generation import build as build_lib  # noqa: F401  (registers build-generator)
from synthbridge.generation import corpus as corpus_lib
from synthbridge.generation import fidelity as fidelity_lib  # noqa: F401  (registers fidelity)
from synthbridge.generation.build import RECORD_FILE, GeneratorBuildConfig, build


@pytest.fixture(scope="module")
def quick_generator(tmp_path_factory):
    """A --quick build (untrained weights, real architecture and files), shared by the tests below."""
    out = tmp_path_factory.mktemp("gen") / "generator"
    record = build(GeneratorBuildConfig.quick(seed=1), out, progress=False)
    return out, record


def _pipe(folder):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder)  # no extra arguments: the folder says everything
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _draw(pipe, prompt="a photo of the digit 7", seed=0):
    return pipe(prompt, num_inference_steps=2, height=32, width=32, output_type="np",
                generator=torch.Generator().manual_seed(seed)).images


# --- corpus -------------------------------------------------------------------------------------------------------

def test_corpus_is_deterministic_per_seed_and_order_free():
    a = corpus_lib.render_corpus(3, 60)
    b = corpus_lib.render_corpus(3, 60, workers=2)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert a.images.shape == (60, 32, 32, 3) and a.images.dtype == np.uint8
    # Item i is a function of (seed, i) alone: rendering it by itself gives the same image and caption.
    item = corpus_lib.corpus_item(3, 41)
    assert np.array_equal(item.image, a.images[41]) and item.caption == a.captions[41]
    c = corpus_lib.render_corpus(4, 60)
    assert c.captions != a.captions and not np.array_equal(c.images, a.images)


def test_captions_name_what_is_drawn():
    data = corpus_lib.render_corpus(0, 400)
    counts = corpus_lib.counts(data)
    assert set(counts["content"]) == {"digit", "letter", "symbol", "shape"}
    assert set(counts["caption_kind"]) == {"empty", "class", "full"}
    assert 0.03 < counts["caption_kind"]["empty"] / len(data) < 0.2  # room for classifier-free guidance
    assert 0.35 < counts["content"]["digit"] / len(data) < 0.65
    for caption, text, kind, image in zip(data.captions, data.texts, data.caption_kinds, data.images):
        assert image.std() > 5, "every image shows something"
        if kind == "empty":
            assert caption == ""
            continue
        assert corpus_lib.class_phrase(text) in caption
        if text in "0123456789":
            assert f"the digit {text}" in caption
            # no other digit is named
            assert not any(f"digit {d}" in caption for d in "0123456789" if d != text)
        if kind == "class":
            assert "," not in caption
    assert corpus_lib.uncovered_words(data.captions) == []
    assert corpus_lib.digit_prompt(7) == "a photo of the digit 7"


def test_unknown_content_is_a_user_error():
    with pytest.raises(UserError, match="unknown corpus content 'digits'"):
        corpus_lib.corpus_item(0, 0, content="digits")


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
    assert len(tokenizer) == _pipe(folder).text_encoder.config.vocab_size


# --- the built folder ---------------------------------------------------------------------------------------------

def test_quick_build_loads_with_plain_from_pretrained_and_runs_ddim_and_dpm(quick_generator, capfd):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    folder, record = quick_generator
    capfd.readouterr()
    pipe = _pipe(folder)
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
        images = _draw(pipe)
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
    pipe = _pipe(folder)
    width = pipe.text_encoder.config.hidden_size
    rows = pipe.text_encoder.get_input_embeddings().weight.shape[0]
    embedding = torch.randn(width, generator=torch.Generator().manual_seed(0))
    pipe.load_textual_inversion({"<mnist-style>": embedding}, token="<mnist-style>")
    assert pipe.text_encoder.get_input_embeddings().weight.shape[0] == rows + 1
    token_id = pipe.tokenizer.convert_tokens_to_ids("<mnist-style>")
    assert torch.equal(pipe.text_encoder.get_input_embeddings().weight[token_id], embedding)
    assert token_id in pipe.tokenizer("a photo of the digit 7 in <mnist-style> style").input_ids
    assert _draw(pipe, "a photo of the digit 7 in <mnist-style> style").shape == (1, 32, 32, 3)


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


def test_fidelity_report_has_the_expected_keys(quick_generator, tmp_path):
    from synthbridge.models import create_model, data_config
    from synthbridge.training.loop import make_transform

    folder, _ = quick_generator
    judges = {}
    for name in ("real", "domain"):  # untrained judges: this checks the bookkeeping, not the numbers
        torch.manual_seed(0)
        model = create_model("mini_resnet", 10, pretrained=False).eval()
        judges[name] = fidelity_lib.Judge(model, make_transform(data_config(model), "none", train=False), {"test_top1": 0})
    cfg = fidelity_lib.FidelityConfig(per_class=3, diversity_sizes=(2, 3), batch_size=15, num_inference_steps=2)
    report = fidelity_lib.measure_fidelity(folder, cfg, out=tmp_path / "f.json", sheet=tmp_path / "sheet.png",
                                           record=True, judges=judges, progress=False)
    assert json.loads((tmp_path / "f.json").read_text())["recognition"] == report["recognition"]
    for judge in ("real_classifier", "in_domain_classifier"):
        figures = report["recognition"][judge]
        assert 0 <= figures["top1"] <= 100 and figures["num_images"] == 30 and set(figures["per_class"]) == set("0123456789")
    for source in ("generator", "render_baseline"):
        assert set(report["diversity"][source]) == {"2", "3"}
        assert 0 <= report["diversity"][source]["3"]["mean_pairwise_distance"] <= 2
        assert 1 <= report["diversity"][source]["3"]["vendi"] <= 3 + 1e-6
    assert report["sampling"]["num_inference_steps"] == 2
    assert (tmp_path / "sheet.png").is_file()
    saved = json.loads((folder / RECORD_FILE).read_text())
    assert saved["fidelity"]["real_classifier_top1"] == report["recognition"]["real_classifier"]["top1"]


def test_diversity_measures_behave():
    rng = np.random.default_rng(0)
    same = np.ones((20, 8))
    spread = rng.normal(size=(20, 8))
    assert fidelity_lib.mean_pairwise_distance(same) == pytest.approx(0, abs=1e-6)
    assert fidelity_lib.vendi_score(same) == pytest.approx(1, abs=1e-6)
    assert fidelity_lib.mean_pairwise_distance(spread) > 1
    assert 1 < fidelity_lib.vendi_score(spread[:5]) < fidelity_lib.vendi_score(spread) <= 8 + 1e-6
    # all-positive features (post-ReLU): a shared offset must not hide the spread
    assert fidelity_lib.vendi_score(10 + spread) == pytest.approx(fidelity_lib.vendi_score(spread), rel=1e-6)


# --- the real generator (when it has been built) ------------------------------------------------------------------

@pytest.mark.skipif(not (GENERATOR_DIR / "model_index.json").is_file(), reason="generator not built")
def test_embedded_generator_loads_and_draws():
    pipe = _pipe(GENERATOR_DIR)
    images = _draw(pipe)
    assert images.shape == (1, 32, 32, 3) and np.isfinite(images).all()
    assert build_lib.read_defaults(GENERATOR_DIR)["guidance_scale"] >= 1


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
