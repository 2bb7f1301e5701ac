"""Grid configs are validated by type before anything is made (issue 23): every field of the grid given a value of
the wrong type is one line and exit 2, nested sections' keys and types too."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import yaml

from synthbridge.cli import main
from synthbridge.experiments import ExperimentConfig

BASE = {"datasets": ["digits"], "models": ["mini_resnet"], "arms": ["real"], "generator": "render", "seeds": [0]}


def _wrong(hint):
    """A value that does not fit `hint` (a text where a list or a number is due, a list where a text is)."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        return "0,1"
    if hint is bool:
        return "yes"
    if hint is dict:
        return ["a", "list"]
    return ["a", "list"]  # str, str | None


FIELDS = typing.get_type_hints(ExperimentConfig)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(ExperimentConfig)])
def test_every_field_of_the_wrong_type_is_one_line_and_exit_2(name, tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({**BASE, name: _wrong(FIELDS[name])}))
    out = tmp_path / "exp"
    assert main(["run", str(grid), "--plan", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err and "does not fit; expected" in err, err
    assert main(["run", str(grid), "--out", str(out)]) == 2 and not out.exists()  # nothing made
    capsys.readouterr()


@pytest.mark.parametrize("section, message", [
    ({"train": {"real": {"steps": "ten"}}}, "'train': real.steps = 'ten' does not fit; expected a whole number"),
    ({"train": {"real": {"stepz": 3}}}, "unknown experiment config 'train' 'real' keys stepz"),
    ({"train": {"input_size": "64"}}, "input_size = '64' does not fit"),
    ({"generation": {"stepz": 4}}, "unknown experiment config 'generation' keys stepz"),
    ({"generation": {"guidance_scale": "high"}}, "'generation': guidance_scale = 'high' does not fit"),
    ({"inversion": {"steps": [1]}}, "'inversion': steps = [1] does not fit"),
    ({"grids": [{"seeds": "1"}]}, "grids[0]: seeds = '1' does not fit"),
])
def test_sections_are_checked_at_load_before_anything_is_made(section, message):
    with pytest.raises(Exception, match=message.replace("[", r"\[").replace("]", r"\]")):
        ExperimentConfig.from_dict({**BASE, **section})


def test_the_shipped_presets_and_lists_where_tuples_are_declared_still_load():
    from synthbridge.experiments.config import preset_names

    for name in preset_names():
        ExperimentConfig.from_yaml(name)
    cfg = ExperimentConfig.from_dict({**BASE, "shots": [None, 2], "train": {"real": {"lr": 1, "steps": 5}}})
    assert cfg.shots == (None, 2) and cfg.train["real"]["lr"] == 1


def test_an_arm_drawn_by_another_model_needs_the_grid_to_name_it(tmp_path, capsys):
    """DiffuseMix's and GIF's arms draw with an editing or variation model the embedded world has not: without
    `editor:` / `image_variation:` the grid is refused in one line, before anything is made."""
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({**BASE, "generator": "mini", "arms": ["real", "mixed_diffusemix"]}))
    assert main(["run", str(grid), "--plan", "--out", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "set `editor:` to an InstructPix2Pix folder" in err, err
    grid.write_text(yaml.safe_dump({**BASE, "generator": "mini", "arms": ["real", "bridged_gif"]}))
    assert main(["run", str(grid), "--plan", "--out", str(tmp_path / "exp")]) == 2
    assert "set `image_variation:` to a StableUnCLIPImg2Img folder" in capsys.readouterr().err
    assert not (tmp_path / "exp").exists()
