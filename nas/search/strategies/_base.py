"""The `Strategy` contract and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from nas.core.encodings import KnownCosts, space_costs
from nas.core.errors import InvalidOptionError
from nas.core.evaluation import EvalResult, Objective
from nas.core.options import Options as BaseOptions
from nas.core.registry import Registry
from nas.core.space import Architecture, SearchSpace


class Strategy(ABC):
    """Proposes architectures and learns from their results.

    Call order: `ask` for a batch, evaluate it, `tell` the results (in any order, possibly across several calls),
    and again. Every architecture a strategy proposes is eventually told, as an OK, pruned or failed result.
    Randomness comes only from the strategy's own generator, seeded at construction, so the same seed and the same
    calls give the same proposals: a resumed search rebuilds a strategy by replaying the calls its store recorded.

    Subclasses implement `ask`; those that learn override `tell`; those with options declare them as a model in
    ``Options`` and take an instance last. `RandomStrategy` is the worked example.

    Args:
        space: the search space.
        objectives: what the search optimizes, the first one primary.
        seed: of the strategy's generator.
        known_costs: costs known without evaluating (a latency table's, say; by default the space's MACs and
            parameters), for strategies that screen or model proposals by them.
        options: the validated options (an instance of ``Options``); None: the defaults.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseOptions]] = BaseOptions

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int | None = None,
        known_costs: KnownCosts | None = None,
        options: BaseOptions | None = None,
    ) -> None:
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
        self.known_costs = known_costs or space_costs(space)

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
    name: str,
    space: SearchSpace,
    objectives: Sequence[Objective],
    seed: int | None = None,
    *,
    known_costs: KnownCosts | None = None,
    **options: Any,
) -> Strategy:
    """Create a registered strategy for a space and its objectives, with its options, e.g.
    ``create_strategy("evolution", space, objectives, seed=0, population=10)``; `InvalidOptionError` names a bad
    option and what is accepted."""
    return STRATEGIES.create(name, space, objectives, seed, known_costs, **options)
