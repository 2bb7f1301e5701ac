"""Progress bars (issue 23): `--no-progress` on every command that shows one, and bars that do not fill a log when
stderr is not a terminal (redrawn every LOG_INTERVAL seconds there, not per step)."""

from __future__ import annotations

import os

import pytest
import torch

from synthbridge.cli import main
from synthbridge.cli.main import QUIET_COMMANDS, build_parser
from synthbridge.io import PROGRESS_ENV


def _train(tmp_path, *extra):
    return main(["train", "--dataset", "digits", "--shots", "2", "--no-pretrained", "--real-steps", "60",
                 "--report-to", "none", "--out", str(tmp_path / "run"), *extra])


def test_no_progress_silences_every_bar_and_a_log_gets_a_few_lines_not_one_per_step(tmp_path, capfd):
    assert _train(tmp_path / "a", "--no-progress") == 0
    assert capfd.readouterr().err == "" and PROGRESS_ENV not in os.environ  # and the switch is not left behind
    assert _train(tmp_path / "b") == 0  # stderr is not a terminal here: redrawn at start and end, not 60 times
    err = capfd.readouterr().err
    assert 0 < err.count("\r") + err.count("\n") <= 12 and len(err) < 1500


@pytest.mark.parametrize("name", sorted(set(build_parser()._subparsers._group_actions[0].choices) - set(QUIET_COMMANDS)))
def test_every_command_with_a_progress_bar_takes_no_progress(name):
    parser = build_parser()._subparsers._group_actions[0].choices[name]
    assert "--no-progress" in parser._option_string_actions


def test_no_progress_also_silences_the_loading_bars_of_diffusers_and_transformers(tiny_sd_path, monkeypatch, capfd):
    """A grid's sets load their pipeline through generate with its own bars on; `--no-progress` still hides them."""
    from synthbridge.diffusion.pipeline import describe_generator, load_generator

    info = describe_generator(str(tiny_sd_path), tiny_sd_path)
    load_generator(info, "fp32", torch.device("cpu"))
    assert "Loading pipeline components" in capfd.readouterr().err  # diffusers' own bar, where nothing hides it
    monkeypatch.setenv(PROGRESS_ENV, "0")  # what --no-progress sets for the command and its workers
    load_generator(info, "fp32", torch.device("cpu"))
    assert capfd.readouterr().err == ""
