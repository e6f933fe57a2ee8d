"""Objectives, evaluation results and the `Evaluator` contract, with the evaluator registry."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from numbers import Real
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from nas.core.errors import InvalidOptionError
from nas.core.figures import Direction, Figure, figure_keys
from nas.core.figures import Unit as Unit
from nas.core.options import Options as BaseOptions
from nas.core.registry import Registry
from nas.core.space import Architecture, SearchSpace


@dataclass(frozen=True)
class Objective:
    """A quantity to optimize: a metric or cost name, a direction, and optionally a bound it must satisfy.

    With a bound, the objective is also a constraint: ``value <= bound`` when minimized, ``>= bound`` when maximized.
    A bound is a finite number (not a bool). An objective given without a direction is open: `resolve_objectives`
    gives it the direction its producer declares (a search does so before anything runs).

    Example:
        >>> Objective.parse("min:macs<=20e6")
        Objective(name='macs', direction=<Direction.MIN: 'min'>, bound=20000000.0)
        >>> Objective.parse("accuracy").direction is None
        True
    """

    name: str
    direction: Direction | None = None
    bound: float | None = None

    def __post_init__(self) -> None:
        if self.direction is not None:
            if self.direction not in Direction.__members__.values():
                raise InvalidOptionError(
                    f"objective {self.name!r}: direction {self.direction!r} is not one of max, min"
                )
            object.__setattr__(self, "direction", Direction(self.direction))  # "max" and Direction.MAX alike
        if self.bound is not None:
            if isinstance(self.bound, bool) or not isinstance(self.bound, Real) or not math.isfinite(self.bound):
                raise InvalidOptionError(f"objective {self.name!r}: bound {self.bound!r} is not a finite number")
            object.__setattr__(self, "bound", float(self.bound))

    @classmethod
    def parse(cls, text: str) -> Objective:
        """``"accuracy"``, ``"latency:pixel3"``, ``"max:score"``, ``"min:loss"`` or with a bound ``"macs<=20e6"``;
        without a ``max:`` or ``min:`` prefix the direction is left open."""
        name, bound = text.strip(), None
        for op in ("<=", ">="):
            if op in name:
                name, raw = (part.strip() for part in name.split(op, 1))
                try:
                    bound = float(raw)
                except ValueError:
                    raise InvalidOptionError(f"objective {text!r}: bound {raw!r} is not a number") from None
        direction = None
        prefix, sep, rest = name.partition(":")
        if sep and prefix in Direction.__members__.values():
            direction, name = Direction(prefix), rest
        if not name:
            raise InvalidOptionError(f"objective {text!r} has no name; e.g. accuracy, macs, latency:pixel3, macs<=20e6")
        return cls(name, direction, bound)

    @property
    def resolved(self) -> Direction:
        """The direction; `InvalidOptionError` while it is open."""
        if self.direction is None:
            raise InvalidOptionError(
                f"objective {self.name!r} has no direction: write max:{self.name} or min:{self.name}, or resolve it "
                "against the figures its evaluator declares (nas.resolve_objectives)"
            )
        return self.direction

    def sign(self) -> float:
        """+1 for a maximized objective, -1 for a minimized one: ``sign * value`` is always to be maximized."""
        return 1.0 if self.resolved is Direction.MAX else -1.0

    def feasible(self, value: float) -> bool:
        """Whether ``value`` satisfies the bound (always, without one)."""
        if self.bound is None:
            return True
        return value >= self.bound if self.resolved is Direction.MAX else value <= self.bound


def resolve_objectives(
    objectives: Sequence[Objective], figures: Sequence[Figure], producer: str = "the evaluator"
) -> tuple[Objective, ...]:
    """Each objective with a direction: its own when given (it may contradict the declaration), else the one its
    figure declares; ``latency:<device>`` is the figure ``latency_ms:<device>``.

    Example:
        >>> figures = [Figure("score", Direction.MAX), Figure("macs", Direction.MIN, Unit.MACS)]
        >>> resolved = resolve_objectives([Objective.parse("score"), Objective("macs", "max")], figures)
        >>> [o.direction.value for o in resolved]
        ['max', 'max']

    Raises:
        InvalidOptionError: an objective ``producer`` does not produce; the message lists what it produces.
    """
    declared = {f.name: f.direction for f in figures}
    found = {o.name: next((declared[k] for k in figure_keys(o.name) if k in declared), None) for o in objectives}
    missing = [name for name, direction in found.items() if direction is None]
    if missing:
        raise InvalidOptionError(
            f"objectives: {producer} does not produce {', '.join(missing)}; it produces "
            f"{', '.join(sorted(declared)) or 'nothing'}"
        )
    return tuple(o if o.direction is not None else replace(o, direction=found[o.name]) for o in objectives)


class Status(StrEnum):
    """Outcome of one evaluation: done at its full fidelity, failed, or stopped early by a multi-fidelity scheduler
    (its figures are those of the lower fidelity it reached)."""

    OK = "ok"
    FAILED = "failed"
    PRUNED = "pruned"


@dataclass(frozen=True)
class Provenance:
    """How a result was obtained: evaluator, fidelity, seed, wall time, and anything else worth recording."""

    evaluator: str
    fidelity: Mapping[str, float] = field(default_factory=dict)
    seed: int | None = None
    wall_time_s: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "evaluator": self.evaluator,
            "fidelity": dict(self.fidelity),
            "seed": self.seed,
            "wall_time_s": self.wall_time_s,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class EvalResult:
    """The outcome of evaluating one architecture: metrics (e.g. ``accuracy``), costs (``macs``, ``params``,
    ``latency_ms:<device>``), a status with its reason when failed, and the provenance.

    A failure is ``retryable`` when it was not the architecture's fault (a worker died, a file system error): a
    resumed search evaluates it again, once. A diverged or invalid architecture is not retried."""

    arch: Architecture
    metrics: Mapping[str, float]
    costs: Mapping[str, float]
    provenance: Provenance
    status: Status = Status.OK
    reason: str = ""
    retryable: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "costs", MappingProxyType(dict(self.costs)))

    @classmethod
    def failed(cls, arch: Architecture, reason: str, provenance: Provenance, *, retryable: bool = False) -> EvalResult:
        """A failed evaluation: no figures, and the reason in one sentence."""
        return cls(arch, {}, {}, provenance, Status.FAILED, reason, retryable)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form; `from_dict` reads it back."""
        return {
            "arch": self.arch.to_dict(),
            "metrics": dict(self.metrics),
            "costs": dict(self.costs),
            "provenance": self.provenance.to_dict(),
            "status": self.status.value,
            "reason": self.reason,
            "retryable": self.retryable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        """Inverse of `to_dict`."""
        return cls(
            Architecture.from_dict(data["arch"]),
            data["metrics"],
            data["costs"],
            Provenance(**data["provenance"]),
            Status(data["status"]),
            data["reason"],
            bool(data.get("retryable", False)),
        )

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (for Ray workers) through the plain dict form
        return EvalResult.from_dict, (self.to_dict(),)

    @property
    def arch_id(self) -> str:
        return self.arch.arch_id

    @property
    def ok(self) -> bool:
        """Evaluated at its full fidelity."""
        return self.status is Status.OK

    @property
    def measured(self) -> bool:
        """Has its figures: evaluated in full, or stopped early at a lower fidelity (what strategies learn from)."""
        return self.status is not Status.FAILED

    def value(self, name: str) -> float:
        """The figure called ``name``, from the metrics or the costs; ``latency:<device>`` reads
        ``latency_ms:<device>``. NaN when the result does not have it (a failed evaluation, for instance)."""
        for key in figure_keys(name):
            if key in self.metrics:
                return float(self.metrics[key])
            if key in self.costs:
                return float(self.costs[key])
        return math.nan


@dataclass(frozen=True)
class DataSpec:
    """The task's data as the config names it: a dataset name (``digits``, ``fashion-mnist``), an ``.npz`` file
    or an image folder; where to find it; and options of its loading and split (``train_size``, ...), which the
    evaluator that reads it validates with its model (`nas.ReadsData`)."""

    name: str = "digits"
    data_dir: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluatorContext:
    """What the framework hands an evaluator besides its own options: the space, the data, the seed, threads per
    worker, the device, the run's folder (where training keeps weights) and, on workers, the checkpoint that the
    evaluator's `Prepares.prepare` step wrote.

    A search builds it from its config (`nas.create_context` builds one in Python). It pickles, so workers rebuild
    their evaluator from it.

    Example:
        >>> context = EvaluatorContext(nas.create_space("nb201"), DataSpec("cifar10"), seed=3)  # doctest: +SKIP
    """

    space: SearchSpace
    data: DataSpec = field(default_factory=DataSpec)
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    run_dir: Path | None = None
    checkpoint: Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise InvalidOptionError(f"an evaluator's threads are a positive integer; got {self.threads!r}")

    @property
    def weights_dir(self) -> Path | None:
        """Where an expensive evaluator keeps the weights it trains (none outside a run)."""
        return None if self.run_dir is None else self.run_dir / "weights"


class Evaluator(ABC):
    """Measures architectures. A subclass declares its options as a model in ``Options`` (none by default) and is
    constructed with the framework's `EvaluatorContext` first and its validated options last:
    ``__init__(self, context, options)``. Call order: `prepare` once, for an evaluator that needs shared state (a
    trained supernet, a fitted predictor: it has the `nas.Prepares` ability and writes a checkpoint there), then
    `evaluate` on batches.

    `evaluate` is batched on purpose: tabular, predictor and supernet evaluations cost micro- to milliseconds each
    and must not pay a per-call scheduling cost. A failed architecture is a result with `Status.FAILED` and a reason,
    never an exception that loses the rest of the batch. Optional abilities (known costs, a table, weight sharing,
    reading the dataset) are the protocols of `nas.core.capabilities`.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseOptions]] = BaseOptions
    #: Whether one evaluation takes seconds or more (training): runners then schedule each architecture as a trial
    #: of its own instead of sending batches to long-lived workers.
    expensive: ClassVar[bool] = False
    #: Options that name files (a table, say): a search makes them absolute where it starts, since workers run in
    #: other folders.
    path_options: ClassVar[tuple[str, ...]] = ()

    def fidelity_steps(self) -> list[dict[str, float]]:
        """The budgets of a multi-fidelity schedule, cheapest first, ending at the full fidelity (none by default).

        A runner may evaluate an architecture at each step in turn and stop the unpromising ones early (ASHA).
        """
        return []

    @abstractmethod
    def figures(self) -> tuple[Figure, ...]:
        """The metrics and costs every OK result of this evaluator carries (e.g. ``accuracy``, ``macs``,
        ``latency_ms:pixel3``), each with its direction and unit: a search checks its objectives against them before
        anything runs, and an objective given without a direction takes the declared one."""

    @abstractmethod
    def evaluate(self, archs: Sequence[Architecture], budget: Mapping[str, float] | None = None) -> list[EvalResult]:
        """One result per architecture, in order; ``budget`` is the fidelity (e.g. ``{"epochs": 3}``) if any."""


EVALUATORS: Registry[Evaluator] = Registry("evaluator", "nas.evaluators")


def register_evaluator(name: str):  # type: ignore[no-untyped-def]
    """Class decorator: make an `Evaluator` subclass available to `create_evaluator` under ``name``."""
    return EVALUATORS.register(name)


def create_evaluator(name: str, context: EvaluatorContext, **options: Any) -> Evaluator:
    """Create a registered evaluator for ``context`` with its options, e.g.
    ``create_evaluator("train", nas.create_context("train", "macro-cnn"), epochs=1)``; `InvalidOptionError` names a
    bad option and what is accepted."""
    return EVALUATORS.create(name, context, **options)
