"""Random search: the reference implementation of the `Strategy` contract."""

from __future__ import annotations

from nas.core.space import Architecture
from nas.search.strategies._base import Strategy, register_strategy


@register_strategy("random")
class RandomStrategy(Strategy):
    """Samples every architecture independently with the space's `sample`; learns nothing.

    Example:
        >>> strategy = RandomStrategy(space, [Objective.parse("max:accuracy")], seed=0)  # doctest: +SKIP
        >>> batch = strategy.ask(8)  # doctest: +SKIP
    """

    def ask(self, n: int) -> list[Architecture]:
        return self.space.sample_many(n, self.rng)
