"""The registry of search spaces and its public helpers."""

from __future__ import annotations

from typing import Any

from nas.registry import Registry
from nas.space import SearchSpace

SPACES: Registry[SearchSpace] = Registry("search space", "nas.spaces")


def register_space(name: str):  # type: ignore[no-untyped-def]
    """Class decorator: make a `SearchSpace` subclass available to `create_space` under ``name``."""
    return SPACES.register(name)


def create_space(name: str, **kwargs: Any) -> SearchSpace:
    """Create a registered space, e.g. ``create_space("nb201", input_shape=(3, 32, 32), num_classes=10)``."""
    return SPACES.create(name, **kwargs)


def list_spaces() -> dict[str, str]:
    """Registered space names with their one-line descriptions."""
    return {name: SPACES.get(name).description for name in SPACES.names()}
