"""The `Strategy` contract and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from nas.errors import InvalidOptionError
from nas.evaluation import EvalResult, Objective
from nas.registry import Registry
from nas.space import Architecture, SearchSpace


class Strategy(ABC):
    """Proposes architectures and learns from their results.

    Call order: `ask` for a batch, evaluate it, `tell` the results (in any order, possibly across several calls),
    and again. Every architecture a strategy proposes is eventually told, as an OK or a failed result. `state_dict`
    and `load_state_dict` save and restore everything the next `ask` depends on, so a resumed search continues as
    if it had never stopped. Randomness comes only from the strategy's own generator, seeded at construction.

    Subclasses implement `ask`; those that learn override `tell` (calling ``super().tell``) and extend the state.
    `RandomStrategy` is the worked example.
    """

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int | None = None) -> None:
        if not objectives:
            raise InvalidOptionError("a strategy needs at least one objective, e.g. accuracy")
        self.space = space
        self.objectives = tuple(objectives)
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def ask(self, n: int) -> list[Architecture]:
        """Up to ``n`` architectures to evaluate next (fewer, or none, when the strategy has nothing left)."""

    def tell(self, results: Sequence[EvalResult]) -> None:  # noqa: B027 - learning is optional
        """Learn from evaluated architectures (nothing to learn by default)."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the generator's state plus whatever subclasses add."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by `state_dict`."""
        self.rng.bit_generator.state = state["rng"]


STRATEGIES: Registry[Strategy] = Registry("strategy", "nas.strategies")


def register_strategy(name: str):  # type: ignore[no-untyped-def]
    """Class decorator: make a `Strategy` subclass available to `create_strategy` under ``name``."""
    return STRATEGIES.register(name)


def create_strategy(
    name: str, space: SearchSpace, objectives: Sequence[Objective], seed: int | None = None, **options: Any
) -> Strategy:
    """Create a registered strategy for a space and its objectives, e.g. ``create_strategy("random", space, objs)``."""
    return STRATEGIES.create(name, space=space, objectives=objectives, seed=seed, **options)
