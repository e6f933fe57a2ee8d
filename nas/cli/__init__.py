"""The ``nas`` command line."""

from nas.cli.app import main

__all__ = ["main"]
