"""Synthetic sources that are not a diffusion model: a name -> a function that fills a synthetic folder.

Plugins register them (the embedded world registers `render`, digits drawn from fonts). An experiment
grid whose `generator` is one of these names makes its sets with it instead of `generate`.

    @SOURCES.register("render")
    def render(dataset: str, per_class: int, out: str, data_root: str | None) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable

from synthbridge.registry import Registry

SOURCES: Registry[Callable[..., None]] = Registry("synthetic source", plugins=True)
