"""Subcommands that live with their stage modules are registered by importing those modules here."""
from synthbridge.generation import cli as _generation_cli  # noqa: F401  (synthbridge generate)
