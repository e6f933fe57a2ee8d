"""Figures: the metrics and costs that evaluators and spaces declare, with the direction that is better and a unit.

Apart from `nas.core.evaluation` so that spaces (`NetworkSpace.figures`) declare their analytic costs too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    """Whether an objective is maximized or minimized."""

    MAX = "max"
    MIN = "min"


class Unit(StrEnum):
    """What a figure's number counts: accuracy as a fraction (0-1) or a percentage (0-100), a count of MACs or
    parameters, milliseconds, a cross-entropy in nats, or a score without a unit (a zero-cost proxy, say)."""

    FRACTION = "fraction"
    PERCENT = "percent"
    MACS = "MACs"
    PARAMS = "parameters"
    MS = "ms"
    NATS = "nats"
    SCORE = "score"

    @property
    def symbol(self) -> str:
        """How a column header writes the unit: ``%`` for percent, the unit's name otherwise."""
        return "%" if self is Unit.PERCENT else self.value


@dataclass(frozen=True)
class Figure:
    """A metric or cost that an evaluator (or a space's cost model) declares it produces: its name, the direction
    that is better, and its unit. An objective given without a direction takes the declared one.

    Example:
        >>> Figure("accuracy", Direction.MAX, Unit.FRACTION)
        Figure(name='accuracy', direction=<Direction.MAX: 'max'>, unit=<Unit.FRACTION: 'fraction'>)
    """

    name: str
    direction: Direction
    unit: Unit = Unit.SCORE


def figure_keys(name: str) -> tuple[str, ...]:
    """The keys a figure called ``name`` may be stored under: itself, and ``latency_ms:<device>`` for
    ``latency:<device>``."""
    alias = name.replace("latency:", "latency_ms:", 1)
    return (name, alias) if alias != name else (name,)


def labelled(name: str, units: Mapping[str, Unit]) -> str:
    """``name`` with its unit for a column header or an axis, e.g. ``accuracy [%]``; ``name`` alone when the unit
    is not known.

    Example:
        >>> labelled("latency:pixel3", {"latency_ms:pixel3": Unit.MS})
        'latency:pixel3 [ms]'
    """
    unit = next((units[key] for key in figure_keys(name) if key in units), None)
    return name if unit is None else f"{name} [{unit.symbol}]"
