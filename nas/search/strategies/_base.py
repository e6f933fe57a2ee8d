"""The `Strategy` contract and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from nas.core.errors import InvalidOptionError
from nas.core.evaluation import EvalResult, Objective
from nas.core.registry import Registry
from nas.core.space import Architecture, SearchSpace


class Strategy(ABC):
    """Proposes architectures and learns from their results.

    Call order: `ask` for a batch, evaluate it, `tell` the results (in any order, possibly across several calls),
    and again. Every architecture a strategy proposes is eventually told, as an OK, pruned or failed result.
    Randomness comes only from the strategy's own generator, seeded at construction, so the same seed and the same
    calls give the same proposals: a resumed search rebuilds a strategy by replaying the calls its store recorded.

    Subclasses implement `ask`; those that learn override `tell`. `RandomStrategy` is the worked example.
    """

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int | None = None) -> None:
        if not objectives:
            raise InvalidOptionError("a strategy needs at least one objective, e.g. accuracy")
        open_ = [o.name for o in objectives if o.direction is None]
        if open_:
            raise InvalidOptionError(
                f"a strategy needs each objective's direction; {', '.join(open_)} has none: write max:NAME or "
                "min:NAME, or resolve the objectives against the evaluator's figures (nas.resolve_objectives)"
            )
        self.space = space
        self.objectives = tuple(objectives)
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def ask(self, n: int) -> list[Architecture]:
        """Up to ``n`` architectures to evaluate next (fewer, or none, when the strategy has nothing left)."""

    def tell(self, results: Sequence[EvalResult]) -> None:  # noqa: B027 - learning is optional
        """Learn from evaluated architectures (nothing to learn by default)."""


STRATEGIES: Registry[Strategy] = Registry("strategy", "nas.strategies")


def register_strategy(name: str):  # type: ignore[no-untyped-def]
    """Class decorator: make a `Strategy` subclass available to `create_strategy` under ``name``."""
    return STRATEGIES.register(name)


def create_strategy(
    name: str, space: SearchSpace, objectives: Sequence[Objective], seed: int | None = None, **options: Any
) -> Strategy:
    """Create a registered strategy for a space and its objectives, e.g. ``create_strategy("random", space, objs)``."""
    return STRATEGIES.create(name, space=space, objectives=objectives, seed=seed, **options)
