"""Regularized (aging) evolution (Real et al., 2019), multi-objective through Pareto-rank tournaments."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Annotated

from pydantic import Field, model_validator

from nas.core.encodings import KnownCosts
from nas.core.evaluation import EvalResult, Objective
from nas.core.options import Options, PositiveInt
from nas.core.space import Architecture, SearchSpace
from nas.search.strategies._base import Strategy, register_strategy
from nas.search.strategies._ranking import best_indices


class EvolutionOptions(Options):
    """The options of regularized evolution (see `RegularizedEvolution`)."""

    population: Annotated[int, Field(ge=2)] = 20
    tournament: PositiveInt = 5

    @model_validator(mode="after")
    def _tournament_of_the_population(self) -> EvolutionOptions:
        if self.tournament > self.population:
            raise ValueError(f"tournament={self.tournament} exceeds population={self.population}")
        return self


@register_strategy("evolution")
class RegularizedEvolution(Strategy):
    """Keeps the last ``population`` successful results; each child mutates the winner of a tournament of
    ``tournament`` members drawn from them. The winner has the best Pareto rank in the tournament (with one objective:
    the best value); ties are broken at random. The first ``population`` proposals are random samples.

    Options (`EvolutionOptions`):
        population: how many of the latest results stay alive (the oldest dies first: aging), at least 2.
        tournament: how many members compete for each child, at most ``population``.
    """

    Options = EvolutionOptions

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int | None = None,
        known_costs: KnownCosts | None = None,
        options: EvolutionOptions | None = None,
    ) -> None:
        options = EvolutionOptions() if options is None else options
        super().__init__(space, objectives, seed, known_costs, options)
        self.population_size = options.population
        self.tournament = options.tournament
        self.population: deque[EvalResult] = deque(maxlen=options.population)
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
