"""Name -> class registries for spaces, evaluators, strategies and predictors.

A class is registered either with the decorator (``@register_space("my-space")``) or by another installed package
through an entry point in the registry's group (``[project.entry-points."nas.spaces"]``), so the core never imports
the concrete packages. The core declares its own classes that need a heavy library the same way (`Registry.declare`):
their module is imported when the name is first used. The registry owns the name: it sets the class's ``name`` when
it registers it (the decorator's argument, or the entry point's or declaration's name). A class that is also
registered by its module's decorator has its name wherever its module is imported, e.g. in a Ray worker that
unpickles an instance: the concrete packages do both.

A registered class declares its options as a pydantic model in the ClassVar ``Options`` (see `nas.core.options`),
and its constructor takes what the framework hands it first and the validated options last: ``cls(*given, options)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import AfterValidator

from nas.core.errors import UnknownNameError
from nas.core.options import Options as BaseOptions
from nas.core.options import validate_options


class Component(Protocol):
    """What a registry holds: a class with a name (set by the registry) and an options model."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseOptions]]


T = TypeVar("T", bound=Component)


class Registry(Generic[T]):
    """Maps config names to classes; `create` validates options against the class's ``Options`` model."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._classes: dict[str, type[T]] = {}
        self._declared: dict[str, str] = {}  # name -> "module:Class", imported on first use

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator registering the class under ``name`` (which becomes its ``name``)."""

        def decorate(cls: type[T]) -> type[T]:
            cls.name = name
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
                    self.register(name)(ep.load())
                except ImportError as error:
                    raise UnknownNameError(
                        f"{self.kind} {name!r} is declared as {ep.value} but fails to import: {error}"
                    ) from error
        if name not in self._classes:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names()) or 'none'}")
        return self._classes[name]

    def options(self, name: str, given: Mapping[str, Any] | BaseOptions | None = None) -> BaseOptions:
        """``given`` validated against the options model of the class registered under ``name``.

        Raises:
            UnknownNameError: no class is registered under ``name``.
            InvalidOptionError: an option is unknown or invalid (the message names it and what is accepted).
        """
        return validate_options(self.get(name).Options, given, f"{self.kind} {name!r}")

    def create(self, name: str, *given: Any, **options: Any) -> T:
        """An instance of the class registered under ``name``: ``cls(*given, validated options)``.

        Raises:
            UnknownNameError: no class is registered under ``name``.
            InvalidOptionError: an option is unknown or invalid (the message names it and what is accepted).
        """
        cls: Callable[..., T] = self.get(name)
        return cls(*given, self.options(name, options))


def registered(registry: Registry[Any]) -> AfterValidator:
    """A pydantic validator of an option that names a component: the name must be registered in ``registry`` (the
    error lists the registered names).

    Example:
        >>> predictor: Annotated[str, registered(PREDICTORS)] = "gp"  # doctest: +SKIP
    """

    def check(name: str) -> str:
        try:
            registry.get(name)
        except UnknownNameError as error:
            raise ValueError(str(error)) from None
        return name

    return AfterValidator(check)
