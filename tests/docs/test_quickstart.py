"""The README's quickstart: parsed (every command, the grid and the Python, in seconds), and run as written: its bash
block (generate, train real, train bridged, a grid with the report) and its Python block, each in a fresh folder
holding what the README says the user brings, `data/` (an ImageFolder) and `sd15/` (a diffusers Stable Diffusion
folder), plus the README's `my-grid.yaml`.

Two things stand in for the user's: `sd15/` is the tests' tiny random SD 1.x pipeline (16-pixel images), and
`resnet50` is a plugin's (the `synthbridge.plugins` entry point, the way the embedded world adds its backbones): the
same name and kind of model, a bottleneck ResNet (timm's, with resnet50d's deep stem: a 7x7 convolution this
narrow is slow on a CPU) whose "ImageNet" weights timm reads from a local file, 4 to 16 wide at 72 pixels, so a
cell trains in seconds instead of GPU-hours. 72 pixels is above the embedded profile's 64, so
every command resolves the full profile a resnet50 user gets (epochs, timm's transform, loader workers).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import write_photo_folder

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("cat", "dog")
SIZE = 72  # the stand-in's input side: above profiles.SMALL_IMAGE_PX, so the full profile
ARGS = dict(layers=(1, 1, 1, 1), channels=(4, 8, 8, 16), stem_width=4, stem_type="deep", replace_stem_pool=True)


def readme_blocks() -> dict[str, list[str]]:
    """The quickstart's and the Python section's fenced blocks by language (bash, yaml, python)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    text = readme[readme.index("## Quickstart on your own data"):readme.index("## What the embedded study found")]
    blocks: dict[str, list[str]] = {"bash": [], "yaml": [], "python": []}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, re.S):
        blocks[lang].append(body)
    return blocks


STANDIN = '''\
"""A stand-in for timm's resnet50 (tests/docs/test_quickstart.py): a small bottleneck ResNet at {size} px whose
1,000-class weights timm reads from a local file, registered under timm's name."""
import warnings

from timm.models import build_model_with_cfg, register_model
from timm.models.resnet import Bottleneck, ResNet

default_cfgs = {{"resnet50": dict(file={weights!r}, num_classes=1000, input_size=(3, {size}, {size}), pool_size=None,
                                 crop_pct=0.875, interpolation="bicubic", mean=(0.485, 0.456, 0.406),
                                 std=(0.229, 0.224, 0.225), classifier="fc", first_conv="conv1.0")}}

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # timm warns that the name is taken: taking it is the point

    @register_model
    def resnet50(pretrained=False, **kwargs):
        return build_model_with_cfg(ResNet, "resnet50", pretrained, block=Bottleneck, **dict({args!r}, **kwargs))
'''


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    """A folder for PYTHONPATH: the stand-in plugin module, its entry point and its random 'ImageNet' weights."""
    import torch
    from safetensors.torch import save_file
    from timm.models.resnet import Bottleneck, ResNet

    site = tmp_path_factory.mktemp("standin")
    weights = site / "resnet50-in1k.safetensors"
    torch.manual_seed(0)
    save_file(ResNet(block=Bottleneck, num_classes=1000, **ARGS).state_dict(), weights)
    (site / "quickstart_standin.py").write_text(STANDIN.format(size=SIZE, weights=str(weights), args=ARGS))
    info = site / "quickstart_standin-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: quickstart-standin\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[synthbridge.plugins]\nquickstart = quickstart_standin\n")
    return site


def user_folder(folder: Path, tiny_sd_path: Path) -> Path:
    """What the README says the user has: data/ (train and test), sd15/, and the README's my-grid.yaml."""
    write_photo_folder(folder / "data", {"train": 10, "test": 5}, size=96, classes=CLASSES)
    (folder / "sd15").symlink_to(tiny_sd_path, target_is_directory=True)
    (folder / "my-grid.yaml").write_text(readme_blocks()["yaml"][0])
    return folder


def run_as_user(argv: list[str], folder: Path, standin: Path) -> str:
    """`argv` run in `folder` with the venv's commands on PATH and the stand-in plugin importable, offline."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(standin), os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}  # one torch thread, as conftest's one_torch_thread
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout


def check_outputs(folder: Path) -> None:
    """What the quickstart promises: a set of 200 per class, two run folders on the stand-in's pretrained weights at
    its input size in the full profile, and the grid's every cell with its report."""
    from safetensors.torch import load_file

    from synthbridge.experiments import ExperimentConfig
    from synthbridge.experiments.cells import plan_cells

    generation = json.loads((folder / "synth" / "generation.json").read_text())
    assert generation["generator"]["pipeline"] == "StableDiffusionPipeline"
    for name in CLASSES:
        assert len(list((folder / "synth" / name).glob("*.png"))) == 200
    for strategy in ("real", "bridged"):
        run = folder / "runs" / strategy
        metrics = json.loads((run / "metrics.json").read_text())
        config = json.loads((run / "config.json").read_text())["config"]
        assert metrics["num_test"] == 10 and 0 <= metrics["top1"] <= 100
        assert (config["model"], config["pretrained"], config["input_size"], config["profile"]) == (
            "resnet50", True, SIZE, "full")
        assert load_file(run / "model.safetensors")["fc.weight"].shape[0] == len(CLASSES)
        if strategy == "bridged":
            assert metrics["num_train_synthetic"] == 200 * len(CLASSES) and set(metrics["stages"]) == {"synthetic", "real"}

    grid = ExperimentConfig.from_yaml(str(folder / "my-grid.yaml"))
    records = [json.loads(line) for line in (folder / "exp" / "results.jsonl").read_text().splitlines()]
    assert len(records) == len(plan_cells(grid)) and {r["key"]["seed"] for r in records} == set(grid.seeds)
    assert {r["key"]["model"] for r in records} == {"resnet50"}
    assert len({r["key"]["volume"] for r in records if r["key"]["arm"] in grid.volume_arms}) >= 3  # the advisor's sweep
    assert "bridged" in (folder / "exp" / "report.md").read_text() and (folder / "exp" / "report.html").is_file()


def test_the_readmes_quickstart_parses_as_written():
    """Every command of the README's quickstart is a valid command line, its grid a valid grid, its Python example
    valid Python naming the API's functions: in seconds, for `make test-fast` (running them is the test below)."""
    import shlex

    import yaml

    from synthbridge.cli import build_parser
    from synthbridge.experiments import ExperimentConfig

    blocks = readme_blocks()
    commands = [line.split("#")[0].strip() for line in blocks["bash"][0].splitlines() if line.strip()]
    assert len(commands) == 4 and all(c.startswith("synthbridge ") for c in commands)
    parser = build_parser()
    for command in commands:
        assert parser.parse_args(shlex.split(command)[1:]).command == shlex.split(command)[1], command
    grid = ExperimentConfig.from_dict(yaml.safe_load(blocks["yaml"][0]))
    grid.check()
    assert "synthbridge.run" in blocks["python"][0]
    compile(blocks["python"][0], "README.md", "exec")


@pytest.mark.slow  # subprocesses: `make test` runs it, `make test-fast` not
def test_the_quickstart_and_its_python_equivalent_run_as_written(tmp_path, tiny_sd_path, standin):
    """The bash block in one fresh folder, then the Python block in another. The two blocks name the same grid file;
    its cells are run once, by the bash block (the costly part: on this CPU about 90 of the test's seconds): the
    Python block's folder starts with that `exp/`, so its `synthbridge.run` finds every cell done and reports."""
    shell = user_folder(tmp_path / "shell", tiny_sd_path)
    out = run_as_user(["bash", "-euo", "pipefail", "-c", readme_blocks()["bash"][0]], shell, standin)
    assert len(re.findall(r"top1 \d+\.\d\d% on 10 test images", out)) == 2, out[-2000:]
    check_outputs(shell)
    advice = run_as_user(["synthbridge", "advise", "exp"], shell, standin)
    assert "doubling" in advice, advice

    python = user_folder(tmp_path / "python", tiny_sd_path)
    shutil.copytree(shell / "exp", python / "exp")
    (python / "exp" / "report.md").unlink()
    out = run_as_user([sys.executable, "-c", readme_blocks()["python"][0]], python, standin)
    assert re.search(r"top-1: real only \d+\.\d\d%, bridged \d+\.\d\d%", out), out[-2000:]
    assert re.search(r"resnet50 / 10-shot bridged .+ [+-]\d+\.\d\d points per doubling", out), out[-2000:]
    check_outputs(python)
