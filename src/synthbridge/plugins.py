"""Plugins: packages that add datasets, models, generators or synthetic sources through the registries.

A plugin is a module named by an entry point in the group `synthbridge.plugins`; importing it
registers what it brings (the embedded world is one: `synthbridge.embedded.plugin`). Registries that
plugins extend call `load_plugins()` before their first lookup, so no stage ever imports a plugin
itself. A plugin that fails to import is reported once, in one line, and its names stay unknown.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

GROUP = "synthbridge.plugins"
log = logging.getLogger(__name__)
_loaded: dict[str, bool] = {}
_started = False


def load_plugins() -> dict[str, bool]:
    """Import every registered plugin once; returns {name: loaded}."""
    global _started
    if _started:  # re-entrant: a plugin's own registry lookups do not load it again
        return _loaded
    _started = True
    for entry in entry_points(group=GROUP):
        try:
            importlib.import_module(entry.value.split(":")[0])
            _loaded[entry.name] = True
        except ImportError as exc:
            _loaded[entry.name] = False
            log.warning("synthbridge plugin %r (%s) is not available: %s", entry.name, entry.value, exc)
    return _loaded
