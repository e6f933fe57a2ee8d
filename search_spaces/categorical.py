"""A space given by its dimensions alone, in the config: categorical choices and no networks.

Such a space is searched through a table (the ``table`` evaluator with ``arch-json`` or ``choices-columns`` keys):
a graph-network space known only through its benchmark, say. Its version is a hash of its dimensions (and of its
canonical function), so a run of a changed space refuses to resume.

Example (config)::

    space:
      name: categorical
      dimensions: {edge0: [none, skip_connect, conv], edge1: [none, skip_connect, conv]}
      canonical: my_plugin.spaces:canonical   # optional: choices -> the choices of their canonical form
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import Field, field_validator

from nas import Architecture, Choice, InvalidArchitectureError, InvalidOptionError, Options, SearchSpace, register_space

Scalar = str | int | float | bool | None
#: A canonical function: an architecture's choices -> the choices of its canonical form.
CanonicalFn = Callable[[dict[str, Any]], Mapping[str, Any]]


class CategoricalOptions(Options):
    """The categorical space's options, checked together."""

    dimensions: dict[str, list[Scalar]] = Field(min_length=1)
    canonical: str | None = None

    @field_validator("canonical")
    @classmethod
    def _function_reference(cls, canonical: str | None) -> str | None:
        if canonical is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", canonical):
            raise ValueError("expected module:function, e.g. my_plugin.spaces:canonical")
        return canonical

    @field_validator("dimensions")
    @classmethod
    def _distinct_options(cls, dimensions: dict[str, list[Scalar]]) -> dict[str, list[Scalar]]:
        for name, options in dimensions.items():
            if not name:
                raise ValueError("a dimension's name is not empty")
            if not options:
                raise ValueError(f"dimension {name!r} has no options; give a list such as [a, b]")
            seen = [json.dumps(o) for o in options]
            if len(set(seen)) != len(seen):
                raise ValueError(f"dimension {name!r} repeats an option: {options}")
        return dimensions


def load_function(reference: str) -> CanonicalFn:
    """The function ``module:function`` names; `InvalidOptionError` says what cannot be found."""
    module_name, _, function = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InvalidOptionError(
            f"categorical space: canonical {reference!r}: cannot import {module_name}: {error}"
        ) from None
    found = getattr(module, function, None)
    if not callable(found):
        raise InvalidOptionError(
            f"categorical space: canonical {reference!r}: module {module_name} has no function {function}"
        )
    return found  # type: ignore[no-any-return]


@register_space("categorical")
class CategoricalSpace(SearchSpace):
    """The product of categorical dimensions given as data (see the module docstring); it builds no networks.

    Options (`CategoricalOptions`):
        dimensions: dimension name -> its options (JSON scalars), in order.
        canonical: ``module:function`` of a function mapping an architecture's choices (a dict) to the choices of
            its canonical form; by default each architecture is its own.

    Example:
        >>> space = nas.create_space("categorical", dimensions={"op": ["conv", "pool"], "width": [16, 32]})
        >>> space.size(), space.sample(0).choices["width"] in (16, 32)
        (4, True)
    """

    Options = CategoricalOptions
    description: ClassVar[str] = "categorical dimensions given in the config; builds no networks (search it by table)"

    def __init__(self, options: CategoricalOptions) -> None:
        self.options = options
        self._dims = tuple(Choice(name, tuple(values)) for name, values in options.dimensions.items())
        self._canonical = None if options.canonical is None else load_function(options.canonical)
        identity = json.dumps([list(options.dimensions.items()), options.canonical])
        self.version = hashlib.sha256(identity.encode()).hexdigest()[:12]  # type: ignore[misc]

    def dimensions(self) -> tuple[Choice, ...]:
        return self._dims

    def canonical(self, arch: Architecture) -> Architecture:
        """The canonical form the ``canonical`` function gives (``arch`` itself without one)."""
        self.validate(arch)
        if self._canonical is None:
            return arch
        choices = self._canonical(arch.to_dict()["choices"])
        try:
            return self.arch(choices)
        except InvalidArchitectureError as error:
            raise InvalidArchitectureError(
                f"the canonical function {self.options.canonical} gave no architecture of the space for {arch}: {error}"
            ) from None
