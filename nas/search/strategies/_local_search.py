"""Local search, multi-objective as Pareto local search: explore the neighbours of the best architectures found."""

from __future__ import annotations

from collections.abc import Sequence

from nas.core.encodings import KnownCosts
from nas.core.evaluation import EvalResult, Objective
from nas.core.options import Options
from nas.core.space import Architecture, SearchSpace
from nas.search.strategies._base import Strategy, register_strategy
from nas.search.strategies._ranking import best_indices


@register_strategy("local-search")
class LocalSearch(Strategy):
    """Evaluates every neighbour of a centre, in random order; the next centre is a best result (Pareto front
    member) whose neighbourhood is still unexplored, or, when there is none (a local optimum), a random sample.

    With one objective this is the local search that is hard to beat on NAS benchmarks (White et al., 2021): move to
    the best neighbour while it improves, restart at random when it does not.
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int | None = None,
        known_costs: KnownCosts | None = None,
        options: Options | None = None,
    ) -> None:
        super().__init__(space, objectives, seed, known_costs, options)
        self.results: list[EvalResult] = []
        self.explored: set[str] = set()  # arch_ids whose neighbourhood is queued or done
        self.queue: list[Architecture] = []

    def ask(self, n: int) -> list[Architecture]:
        archs: list[Architecture] = []
        while len(archs) < n:
            if not self.queue:
                self._next_centre()
            archs.append(self.queue.pop())
        return archs

    def _next_centre(self) -> None:
        best = [self.results[i] for i in best_indices(self.results, self.objectives)]
        unexplored = [r.arch for r in best if r.arch_id not in self.explored]
        if not unexplored:
            self.queue = [self.space.sample(self.rng)]
            return
        centre = unexplored[self.rng.integers(len(unexplored))]
        self.explored.add(centre.arch_id)
        neighbours = list(self.space.neighbours(centre))
        self.queue = [neighbours[i] for i in self.rng.permutation(len(neighbours))]

    def tell(self, results: Sequence[EvalResult]) -> None:
        self.results.extend(r for r in results if r.measured)
