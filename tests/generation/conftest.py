"""Fixtures of this folder's tests: the tiny random SDXL pipeline (tests/helpers_sdxl.py) as a saved folder, and
`make_config`, a GenerateConfig of three digit classes on the tiny SD pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_sdxl_path(tmp_path_factory) -> Path:
    """A randomly initialised SDXL folder written with save_pretrained (32x32 images). Read-only: shared by the session."""
    from helpers_sdxl import save_tiny_sdxl

    return save_tiny_sdxl(tmp_path_factory.mktemp("tiny-sdxl") / "pipeline", seed=0)


CLASSES = ("1", "3", "7")


@pytest.fixture
def make_config(tiny_sd_path, tmp_path):
    from synthbridge.generation import GenerateConfig

    def make(out="S", **overrides) -> GenerateConfig:
        values = dict(out=str(tmp_path / out), dataset="digits", generator=str(tiny_sd_path), per_class=2,
                      classes=CLASSES, steps=2, batch_size=4, show_progress=False)
        values.update(overrides)
        return GenerateConfig(**values)

    return make
