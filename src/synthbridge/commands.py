"""Subcommands that live with their stage modules are registered by importing those modules here."""
from synthbridge.generation import cli as _generation_cli  # noqa: F401  (synthbridge generate)
from synthbridge.generation import build as _generator_build  # noqa: F401  (synthbridge build-generator)
from synthbridge.generation import fidelity as _fidelity  # noqa: F401  (synthbridge fidelity)
from synthbridge.inversion import cli as _inversion_cli  # noqa: F401  (synthbridge invert)
from synthbridge import gap as _gap  # noqa: F401  (synthbridge gap)
