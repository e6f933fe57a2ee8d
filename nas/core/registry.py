"""Name -> class registries for spaces (and, later, evaluators and strategies).

A class is registered either with the decorator (``@register_space("my-space")``) or by another installed package
through an entry point in the registry's group (``[project.entry-points."nas.spaces"]``), so the core never imports
the concrete packages. The core declares its own classes that need a heavy library the same way (`Registry.declare`):
their module is imported when the name is first used.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from nas.core.errors import InvalidOptionError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps config names to classes; `create` checks keyword arguments against the constructor's signature."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._classes: dict[str, type[T]] = {}
        self._declared: dict[str, str] = {}  # name -> "module:Class", imported on first use

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator registering the class under ``name``."""

        def decorate(cls: type[T]) -> type[T]:
            self._classes[name] = cls
            return cls

        return decorate

    def declare(self, name: str, target: str) -> None:
        """Register the class ``target`` (``"package.module:Class"``) under ``name`` without importing its module
        now: `get` imports it when the name is first used, as for an entry point."""
        self._declared[name] = target

    def names(self) -> list[str]:
        """All registered names, sorted (including those only declared by entry points)."""
        return sorted(set(self._classes) | set(self._declared) | {ep.name for ep in entry_points(group=self.group)})

    def get(self, name: str) -> type[T]:
        """The class registered under ``name``; `UnknownNameError` lists the registered names."""
        if name not in self._classes:
            found: Iterable[EntryPoint] = (
                [EntryPoint(name, self._declared[name], self.group)]
                if name in self._declared
                else entry_points(group=self.group, name=name)
            )
            for ep in found:
                try:
                    self._classes[name] = ep.load()
                except ImportError as error:
                    raise UnknownNameError(
                        f"{self.kind} {name!r} is declared as {ep.value} but fails to import: {error}"
                    ) from error
        if name not in self._classes:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names()) or 'none'}")
        return self._classes[name]

    def create(self, name: str, **kwargs: Any) -> T:
        """An instance of the class registered under ``name``; unknown keyword arguments are an error."""
        cls = self.get(name)
        valid = options_of(cls)
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise InvalidOptionError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for {self.kind} {name!r}; "
                f"valid options: {', '.join(valid)}"
            )
        return cls(**kwargs)


def options_of(cls: type) -> list[str]:
    """Keyword arguments accepted by ``cls``'s constructor, in order."""
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
