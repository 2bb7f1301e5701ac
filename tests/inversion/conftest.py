"""Fixtures of this folder's tests: the tiny random SDXL pipeline (tests/helpers_sdxl.py) as a saved folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_sdxl_path(tmp_path_factory) -> Path:
    """A randomly initialised SDXL folder written with save_pretrained (32x32 images). Read-only: shared by the session."""
    from helpers_sdxl import save_tiny_sdxl

    return save_tiny_sdxl(tmp_path_factory.mktemp("tiny-sdxl") / "pipeline", seed=0)
