"""Regularized (aging) evolution (Real et al., 2019), multi-objective through Pareto-rank tournaments."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from nas.core.errors import InvalidOptionError
from nas.core.evaluation import EvalResult, Objective
from nas.core.space import Architecture, SearchSpace
from nas.search.strategies._base import Strategy, register_strategy
from nas.search.strategies._ranking import best_indices


@register_strategy("evolution")
class RegularizedEvolution(Strategy):
    """Keeps the last ``population`` successful results; each child mutates the winner of a tournament of
    ``tournament`` members drawn from them. The winner has the best Pareto rank in the tournament (with one objective:
    the best value); ties are broken at random. The first ``population`` proposals are random samples.

    Args:
        population: how many of the latest results stay alive (the oldest dies first: aging).
        tournament: how many members compete for each child.
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int | None = None,
        population: int = 20,
        tournament: int = 5,
    ) -> None:
        super().__init__(space, objectives, seed)
        if population < 2 or not 1 <= tournament <= population:
            raise InvalidOptionError(
                f"evolution needs population >= 2 and 1 <= tournament <= population; got {population}, {tournament}"
            )
        self.population_size = population
        self.tournament = tournament
        self.population: deque[EvalResult] = deque(maxlen=population)
        self.asked = 0

    def ask(self, n: int) -> list[Architecture]:
        archs = []
        for _ in range(n):
            seeding = self.asked < self.population_size or len(self.population) < self.tournament
            archs.append(self.space.sample(self.rng) if seeding else self._child())
            self.asked += 1
        return archs

    def _child(self) -> Architecture:
        members = [self.population[i] for i in self.rng.choice(len(self.population), self.tournament, replace=False)]
        winners = best_indices(members, self.objectives)
        return self.space.mutate(members[self.rng.choice(winners)].arch, self.rng)

    def tell(self, results: Sequence[EvalResult]) -> None:
        self.population.extend(r for r in results if r.measured)
