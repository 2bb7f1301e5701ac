"""A registry is a dict plus a decorator (as in timm).

    DATASETS = Registry("dataset")

    @DATASETS.register("mnist5k")
    def mnist5k(...): ...

Unknown names fail with a one-line UserError that lists the known ones. A registry that plugins
extend (`plugins=True`: datasets, generators, synthetic sources, local weights) loads them
(`synthbridge.plugins`) before its first lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from synthbridge.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, *, plugins: bool = False):
        self.kind = kind
        self.plugins = plugins
        self._entries: dict[str, T] = {}

    def _load(self) -> None:
        if self.plugins:
            from synthbridge.plugins import load_plugins

            load_plugins()

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        self._load()
        if name not in self._entries:
            raise UserError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(self._entries)
