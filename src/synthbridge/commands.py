"""Subcommands that live with their stage modules are registered by importing those modules here."""
