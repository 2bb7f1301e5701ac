"""Fixtures of the embedded world's tests."""

from __future__ import annotations

import pytest

from synthbridge.embedded.build import GeneratorBuildConfig, build


@pytest.fixture(scope="session")
def quick_generator(tmp_path_factory):
    """A --quick build (untrained weights, real architecture and files), shared by the tests below."""
    out = tmp_path_factory.mktemp("gen") / "generator"
    record = build(GeneratorBuildConfig.quick(seed=1), out, progress=False)
    return out, record
