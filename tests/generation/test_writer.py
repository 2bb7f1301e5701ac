"""`generate` keeps the GPU busy (issue 24): a batch's images are encoded and written by a pool of threads while
the next batch is drawn, and the manifest still names only files that are complete and in place, so a process
killed with SIGKILL at any moment resumes to the exact set."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from synthbridge.generation import folder as store
from synthbridge.generation import generate
from synthbridge.io import read_jsonl

generate_module = importlib.import_module("synthbridge.generation.generate")  # the package's `generate` is the function


def _pngs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.glob("*/*.png"))}


def test_a_batchs_images_are_written_while_the_next_batch_is_drawn(make_config, digits, monkeypatch):
    next_draw_began = threading.Event()
    draws, overlapped = [], []
    real_draw, real_write = generate_module._draw, store.write_image

    def draw(*args, **kwargs):
        draws.append(1)
        if len(draws) == 2:
            next_draw_began.set()
        return real_draw(*args, **kwargs)

    def write(image, path, *rest):
        if len(overlapped) < 4:  # the first batch's images: each waits until the second batch is being drawn,
            overlapped.append(next_draw_began.wait(timeout=30))  # which never happens if writing blocks drawing
        real_write(image, path, *rest)

    monkeypatch.setattr(generate_module, "_draw", draw)
    monkeypatch.setattr(store, "write_image", write)
    config = make_config(per_class=4)
    summary = generate(config, bundle=digits)
    assert overlapped == [True] * 4 and summary["run"]["generated"] == 12
    lines = read_jsonl(Path(config.out) / "manifest.jsonl")
    assert len({line["path"] for line in lines}) == len(lines) == 12


@pytest.mark.slow
def test_a_killed_generate_resumes_to_the_exact_set(make_config, digits, tiny_sd_path, tmp_path):
    reference = make_config(out="reference", per_class=6)
    generate(reference, bundle=digits)
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "synthbridge", "generate", "--dataset", "digits", "--generator", str(tiny_sd_path),
               "--classes", "1", "3", "7", "--per-class", "6", "--steps", "2", "--batch-size", "4", "--out", str(out),
               "--no-progress"]
    process = subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        parts = store.part_files(out) if out.exists() else []
        if sum(len(p.read_text().splitlines()) for p in parts) >= 5:  # in the middle of the second batch's writes
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    for line in (line for part in store.part_files(out) for line in read_jsonl(part)):
        with Image.open(out / line["path"]) as image:  # every listed image is whole
            image.load()
    summary = generate(make_config(out="killed", per_class=6), bundle=digits)
    assert summary["status"] == "complete" and summary["run"]["generated"] < 18
    assert _pngs(out) == _pngs(Path(reference.out))  # the same set as the run never killed
    lines = read_jsonl(out / "manifest.jsonl")
    assert len({line["path"] for line in lines}) == len(lines) == 18


def test_compile_is_automatic_on_cuda_for_sets_where_it_pays(make_config, digits):
    import torch

    compiles = generate_module.compiles
    least = generate_module.COMPILE_MIN_IMAGES
    assert compiles(None, torch.device("cuda", 0), least) and not compiles(None, torch.device("cuda", 0), least - 1)
    assert not compiles(None, torch.device("cpu"), 10 * least)  # inductor's CPU gains never paid here
    assert compiles(True, torch.device("cpu"), 1) and not compiles(False, torch.device("cuda"), 10 * least)
    summary = generate(make_config(per_class=1), bundle=digits)
    assert (summary["run"]["compile"], summary["run"]["compiled"]) == ("auto", False)  # recorded with the run


def test_the_default_batch_fits_the_gpus_free_memory(monkeypatch):
    import torch

    batch = generate_module.default_batch_size
    assert batch(torch.device("cpu"), 512 * 512, "fp32") == 8
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (80 * 2**30, 141 * 2**30))
    assert batch(torch.device("cuda", 0), 512 * 512, "fp16") == 32  # an H200's, mostly free: the measured batch
    assert batch(torch.device("cuda", 0), 1024 * 1024, "fp16") == 16  # 4x the pixels
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * 2**30, 24 * 2**30))
    assert batch(torch.device("cuda", 0), 512 * 512, "fp16") == 8 and batch(torch.device("cuda", 0), 512 * 512, "fp32") == 4
