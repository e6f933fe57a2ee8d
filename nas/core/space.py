"""Architectures, choice dimensions and the `SearchSpace` base class."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from nas.core.cost import Cost
from nas.core.errors import InvalidArchitectureError, InvalidOptionError
from nas.core.figures import Direction, Figure, Unit
from nas.core.options import Options as BaseOptions
from nas.core.options import PositiveInt
from nas.core.registry import Registry

Scalar = str | int | float | bool | None
Value = Scalar | tuple[Scalar, ...]
Seed = int | np.random.Generator | None


def as_rng(seed: Seed) -> np.random.Generator:
    """A `numpy.random.Generator` from a seed or a generator (never the global state)."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _freeze(value: Any) -> Value:
    """JSON-like value -> hashable value (lists become tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)  # type: ignore[misc]
    if isinstance(value, np.generic):
        return value.item()  # type: ignore[no-any-return]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise InvalidArchitectureError(f"choice value {value!r} is not a JSON scalar or a list of scalars")


def _thaw(value: Value) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, eq=False)
class Architecture:
    """Frozen, hashable description of one network: the space's name and version and a dict of choices.

    Never a module: `SearchSpace.build` turns it into one.

    Example:
        >>> a = Architecture("nb201", "1", {"edge_1_0": "nor_conv_3x3"})
        >>> Architecture.from_dict(a.to_dict()) == a
        True
    """

    space: str
    version: str
    choices: Mapping[str, Value] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen = {str(k): _freeze(v) for k, v in sorted(self.choices.items())}
        object.__setattr__(self, "choices", MappingProxyType(frozen))
        object.__setattr__(self, "_json", json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form: ``{"space", "version", "choices"}``."""
        return {"space": self.space, "version": self.version, "choices": {k: _thaw(v) for k, v in self.choices.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Architecture:
        """Inverse of `to_dict`; raises `InvalidArchitectureError` on a malformed dict."""
        if not isinstance(data, Mapping) or set(data) != {"space", "version", "choices"}:
            got = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise InvalidArchitectureError(
                f"an architecture dict has exactly the keys space, version, choices; got {got}"
            )
        if not isinstance(data["choices"], Mapping):
            raise InvalidArchitectureError("an architecture's 'choices' must be a mapping of dimension name to value")
        return cls(str(data["space"]), str(data["version"]), data["choices"])

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces. Equal architectures have equal JSON."""
        return self._json  # type: ignore[attr-defined,no-any-return]

    @property
    def arch_id(self) -> str:
        """Short stable hash of the canonical JSON (12 hex digits)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Architecture) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return f"Architecture({self.to_json()})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (for Ray workers) through the plain dict form
        return Architecture.from_dict, (self.to_dict(),)


@dataclass(frozen=True)
class Choice:
    """One categorical dimension of a space: a name and its options (JSON scalars or tuples of them)."""

    name: str
    options: tuple[Value, ...]
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(_freeze(o) for o in self.options))
        if not self.options:
            raise InvalidOptionError(f"dimension {self.name!r} has no options")

    def index(self, value: Value) -> int:
        """Position of ``value`` among the options."""
        return self.options.index(value)


@dataclass(frozen=True)
class CellGraph:
    """A cell as a directed acyclic graph with an operation on each edge, for cell encodings (adjacency, paths).

    Nodes are ``0 .. nodes - 1``, node 0 the input and the last node the output; ``edges`` holds
    ``(source, target, operation)``; ``operations`` lists every operation an edge can carry, and ``zero`` the one
    that means "no edge" (if any).
    """

    nodes: int
    edges: tuple[tuple[int, int, str], ...]
    operations: tuple[str, ...]
    zero: str | None = None


class SearchSpace(ABC):
    """A family of architectures described by choices.

    Subclasses set `version` and `description` (the registry sets `name`), declare their options as a model in
    ``Options`` (none by default), take an instance of it in their constructor (``None``: the defaults), and
    implement `dimensions`; `validate` extends the generic check when some combinations of choices are invalid. The
    generic `sample`, `mutate`, `neighbours` and `enumerate` work on the dimensions; `canonical` maps architectures
    that compute the same function to one representative (identity by default). A space whose architectures are
    networks this package builds is a `NetworkSpace`; one known only through a table (searched with a table
    evaluator) is not.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[BaseOptions]] = BaseOptions

    def __init__(self, options: BaseOptions | None = None) -> None:  # noqa: B027 - a space may have no options
        """A space with options keeps what it needs of them (a space without options has none to keep)."""

    # -- what a space must say ---------------------------------------------------------------------------------
    @abstractmethod
    def dimensions(self) -> tuple[Choice, ...]:
        """The choices that make up an architecture, in a fixed order."""

    # -- generic behaviour over the dimensions -------------------------------------------------------------------
    def arch(self, choices: Mapping[str, Any]) -> Architecture:
        """An architecture of this space from a dict of choices, validated."""
        arch = Architecture(self.name, self.version, choices)
        self.validate(arch)
        return arch

    def validate(self, arch: Architecture) -> None:
        """Raise `InvalidArchitectureError` naming the first bad choice; return None for a valid architecture."""
        if not isinstance(arch, Architecture):
            raise InvalidArchitectureError(f"expected an Architecture, got {type(arch).__name__}")
        if arch.space != self.name:
            raise InvalidArchitectureError(f"architecture belongs to space {arch.space!r}, not {self.name!r}")
        if arch.version != self.version:
            raise InvalidArchitectureError(
                f"architecture was made for {self.name} version {arch.version!r}; "
                f"this space is version {self.version!r}"
            )
        dims = self._dimension_index
        missing = [n for n in dims if n not in arch.choices]
        unknown = [n for n in arch.choices if n not in dims]
        if missing or unknown:
            raise InvalidArchitectureError(
                f"{self.name}: missing choices {missing} and unknown choices {unknown}; expected {list(dims)}"
            )
        for name, dim in dims.items():
            if arch.choices[name] not in dim.options:
                raise InvalidArchitectureError(
                    f"{self.name}: {name}={_thaw(arch.choices[name])!r} is not an option; choose one of "
                    f"{[_thaw(o) for o in dim.options]}"
                )

    def sample(self, rng: Seed = None) -> Architecture:
        """One architecture drawn uniformly per dimension with ``rng`` (a seed or a `numpy.random.Generator`)."""
        gen = as_rng(rng)
        return self.arch({d.name: d.options[gen.integers(len(d.options))] for d in self.dimensions()})

    def sample_many(self, n: int, rng: Seed = None) -> list[Architecture]:
        """``n`` architectures drawn in turn from one generator: the same seed gives the same list."""
        gen = as_rng(rng)
        return [self.sample(gen) for _ in range(n)]

    def canonical(self, arch: Architecture) -> Architecture:
        """The representative of the architectures that compute the same function as ``arch``."""
        self.validate(arch)
        return arch

    def cell(self, arch: Architecture) -> CellGraph | None:
        """``arch`` as a `CellGraph`, for cell-based spaces; None (the default) for others."""
        return None

    def active_dimensions(self, arch: Architecture) -> tuple[Choice, ...]:
        """The dimensions whose choice shapes ``arch``'s network (all by default); `mutate` and `neighbours` change
        only these."""
        return self.dimensions()

    def mutate(self, arch: Architecture, rng: Seed = None) -> Architecture:
        """One of `neighbours`: an active dimension with more than one option, set to another option, both uniform."""
        self.validate(arch)
        gen = as_rng(rng)
        dims = [d for d in self.active_dimensions(arch) if len(d.options) > 1]
        if not dims:
            raise InvalidOptionError(f"{self.name}: this space has a single architecture; there is nothing to mutate")
        dim = dims[gen.integers(len(dims))]
        others = [o for o in dim.options if o != arch.choices[dim.name]]
        return self.arch({**arch.choices, dim.name: others[gen.integers(len(others))]})

    def neighbours(self, arch: Architecture) -> Iterator[Architecture]:
        """Every architecture that differs from ``arch`` in exactly one active dimension."""
        self.validate(arch)
        for dim in self.active_dimensions(arch):
            for option in dim.options:
                if option != arch.choices[dim.name]:
                    yield self.arch({**arch.choices, dim.name: option})

    def enumerate(self) -> Iterator[Architecture]:
        """Every architecture of the space, in the order of the dimensions' options (lazy)."""
        dims = self.dimensions()
        for values in itertools.product(*(d.options for d in dims)):
            yield self.arch(dict(zip((d.name for d in dims), values, strict=True)))

    def size(self) -> int:
        """Number of architectures (combinations of choices)."""
        return math.prod(len(d.options) for d in self.dimensions())

    @cached_property
    def _dimension_index(self) -> dict[str, Choice]:
        """Dimensions by name (a space's dimensions are fixed once it is created)."""
        return {d.name: d for d in self.dimensions()}


@dataclass(frozen=True)
class Task:
    """What a network is built for: the shape of one input (channels, height, width) and the number of classes.

    Example:
        >>> Task((1, 8, 8), 10).options()
        {'input_shape': (1, 8, 8), 'num_classes': 10}
    """

    input_shape: tuple[int, int, int]
    num_classes: int

    def options(self) -> dict[str, Any]:
        """The task as the options of a `NetworkSpace`."""
        return {"input_shape": self.input_shape, "num_classes": self.num_classes}


class NetworkOptions(BaseOptions):
    """The options every `NetworkSpace` has: its task. A search takes them from the dataset when its config does not
    give them."""

    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt] = Field(default=(3, 32, 32), strict=False)
    num_classes: PositiveInt = 10

    @field_validator("input_shape", mode="before")
    @classmethod
    def _three_numbers(cls, value: Any) -> Any:
        if not (isinstance(value, (list, tuple)) and len(value) == 3):
            raise ValueError("an input shape is three positive integers (channels, height, width), e.g. [3, 32, 32]")
        return value


class NetworkSpace(SearchSpace):
    """A search space whose architectures are networks for one task (input shape, number of classes), with an
    analytic cost: what training, supernets, proxies, latency and exports need.

    Subclasses implement `build` and `cost` besides `dimensions`; their options model extends `NetworkOptions`.

    Example:
        >>> space = nas.create_space("nb201", input_shape=(3, 32, 32), num_classes=10)  # doctest: +SKIP
        >>> arch = space.sample(np.random.default_rng(0))  # doctest: +SKIP
        >>> space.cost(arch).macs == flop_count(space.build(arch)) // 2  # doctest: +SKIP
    """

    Options: ClassVar[type[BaseOptions]] = NetworkOptions

    def __init__(self, options: NetworkOptions | None = None) -> None:
        task = NetworkOptions() if options is None else options
        self.input_shape: tuple[int, int, int] = task.input_shape
        self.num_classes: int = task.num_classes

    @property
    def task(self) -> Task:
        """The task the networks are built for."""
        return Task(self.input_shape, self.num_classes)

    @abstractmethod
    def build(self, arch: Architecture) -> Any:
        """A fresh `torch.nn.Module` for ``arch`` (validated first)."""

    @abstractmethod
    def cost(self, arch: Architecture) -> Cost:
        """MACs and parameters of ``arch`` for one input of `input_shape`, from the description alone."""

    def figures(self) -> tuple[Figure, ...]:
        """The figures `cost` gives, declared: ``macs`` and ``params``, both minimized."""
        return (Figure("macs", Direction.MIN, Unit.MACS), Figure("params", Direction.MIN, Unit.PARAMS))


def network_space(space: SearchSpace, what: str) -> NetworkSpace:
    """``space`` itself when it builds networks; else `InvalidOptionError` saying that ``what`` needs networks."""
    if not isinstance(space, NetworkSpace):
        raise InvalidOptionError(
            f"{what} needs a space of networks, and space {space.name!r} builds none (it is searched through a table)"
        )
    return space


SPACES: Registry[SearchSpace] = Registry("search space", "nas.spaces")


def register_space(name: str):  # type: ignore[no-untyped-def]
    """Class decorator: make a `SearchSpace` subclass available to `create_space` under ``name``."""
    return SPACES.register(name)


def create_space(name: str, **options: Any) -> SearchSpace:
    """Create a registered space with its options, e.g. ``create_space("nb201", input_shape=(3, 32, 32),
    num_classes=10)``; `InvalidOptionError` names a bad option and what is accepted."""
    return SPACES.create(name, **options)


def list_spaces() -> dict[str, str]:
    """Registered space names with their one-line descriptions."""
    return {name: SPACES.get(name).description for name in SPACES.names()}
