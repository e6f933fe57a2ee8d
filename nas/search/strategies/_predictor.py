"""Predictor-guided search: Bayesian optimisation over architectures with a surrogate that knows its uncertainty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import Field, model_validator

from nas.core.encodings import KnownCosts, RowCache, cost_matrix
from nas.core.evaluation import EvalResult, Objective
from nas.core.options import Options, PositiveInt
from nas.core.predictors import PREDICTORS, Predictor, create_predictor
from nas.core.registry import registered
from nas.core.space import Architecture, SearchSpace
from nas.search.strategies._acquisition import chebyshev, expected_hypervolume_improvement, expected_improvement
from nas.search.strategies._base import Strategy, register_strategy
from nas.search.strategies._ranking import best_indices

#: The random candidates form this many chunks, one of which is replaced per proposal.
_CHUNKS = 10


class PredictorGuidedOptions(Options):
    """The options of predictor-guided search (see `PredictorGuided`)."""

    initial: Annotated[int, Field(ge=2)] = 5
    candidates: PositiveInt = 2000
    predictor: Annotated[str, registered(PREDICTORS)] = "gp"
    predictor_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _predictor_options(self) -> PredictorGuidedOptions:
        if self.predictor_options:  # (the defaults need no check, nor the predictor's module imported)
            PREDICTORS.options(self.predictor, self.predictor_options)
        return self


@register_strategy("predictor")
class PredictorGuided(Strategy):
    """Proposes the candidates a surrogate model (a registered `Predictor`, a Gaussian process by default) finds
    most promising.

    The surrogate encodes the canonical form of each architecture (by default the predictor's encoding: path
    statistics for cell spaces, one-hot choices for others, and the logarithms of the known costs), so architectures
    computing the same function (NAS-Bench-201 cells differing only where no data flows) share their features; the
    acquisition then prefers the cheapest of them. The objective that is not a known cost, or a scalarization of
    several, is modelled; each proposal maximizes

    - with one objective, the expected improvement over the best value found;
    - with a metric against a known cost, the exact expected hypervolume improvement of the found front (reference:
      the metric's bound, else the worst value found, so that the whole front is sought; and the largest cost seen);
    - otherwise, the expected improvement of a random augmented Chebyshev scalarization (ParEGO).

    Candidates are the neighbours of the best architectures found plus ``candidates`` random ones (the whole space
    when it is that small), minus those proposed before and those whose known costs break an objective's bound. The
    first ``initial`` proposals are random.

    The known costs (given to the strategy, by default MACs and parameters from the space's cost model) are the
    objectives known without evaluation, and features of the surrogate.

    Options (`PredictorGuidedOptions`):
        initial: random proposals before the surrogate takes over (at least 2).
        candidates: random candidates scored for each proposal.
        predictor: the registered predictor that models the metric; it must give an uncertainty worth trusting.
        predictor_options: its options, e.g. ``{"encoding": ["onehot", "costs"]}`` or, for the Gaussian process,
            ``{"refit_growth": 1.5}`` (its kernel is refitted when the data has grown by that factor).
    """

    Options = PredictorGuidedOptions

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int | None = None,
        known_costs: KnownCosts | None = None,
        options: PredictorGuidedOptions | None = None,
    ) -> None:
        options = PredictorGuidedOptions() if options is None else options
        super().__init__(space, objectives, seed, known_costs, options)
        self.initial, self.candidates = options.initial, options.candidates
        self.cost_names = sorted(self.known_costs([space.sample(0)]))
        self.modelled = [o for o in self.objectives if o.name not in self.cost_names]
        if len(self.modelled) == 1 and len(self.objectives) <= 2:
            self.mode = "improvement" if len(self.objectives) == 1 else "hypervolume"
        else:
            self.mode = "chebyshev"
        self.model: Predictor = create_predictor(
            options.predictor,
            space,
            seed=0 if seed is None else seed,
            known_costs=self.known_costs,
            **options.predictor_options,
        )
        self.results: list[EvalResult] = []
        self.proposed: set[str] = set()
        self._whole_space = list(space.enumerate()) if space.size() <= self.candidates else None
        # Random candidates come in seeded chunks; each proposal slides a window of _CHUNKS chunks by one, so the
        # pool changes gradually, its features are mostly cached, and (pool seed, step) restores it exactly.
        self._pool_seed, self._step = int(self.rng.integers(2**63)), 0
        self._chunks: dict[int, list[Architecture]] = {}
        self._costs = RowCache(lambda archs: cost_matrix(self.known_costs, self.cost_names, archs))

    # -- proposing ---------------------------------------------------------------------------------------------
    def ask(self, n: int) -> list[Architecture]:
        ok = [r for r in self.results if r.measured]
        archs = self._random(n) if len(self.proposed) < self.initial or len(ok) < 2 else self._best(n, ok)
        self.proposed.update(a.arch_id for a in archs)
        return archs

    def _random(self, n: int) -> list[Architecture]:
        fresh: dict[str, Architecture] = {}
        for _ in range(100):
            draws = [a for a in self.space.sample_many(n, self.rng) if a.arch_id not in self.proposed]
            fresh.update((a.arch_id, a) for a in self._feasible(draws))
            if len(fresh) >= n:
                break
        return list(fresh.values())[:n]

    def _best(self, n: int, ok: list[EvalResult]) -> list[Architecture]:
        pool = self._pool(ok)
        self._step += 1
        if not pool:
            return []
        scores = self._acquisition(ok, pool)
        return [pool[i] for i in np.argsort(-scores, kind="stable")[:n]]

    def _pool(self, ok: list[EvalResult]) -> list[Architecture]:
        if self._whole_space is not None:
            archs = self._whole_space
        else:
            best = [ok[i].arch for i in best_indices(ok, self.objectives)]
            archs = [a for arch in best for a in self.space.neighbours(arch)]
            archs += [a for step in range(self._step, self._step + _CHUNKS) for a in self._chunk(step)]
        pool = list({a.arch_id: a for a in archs if a.arch_id not in self.proposed}.values())
        self._forget(pool, ok)
        return self._feasible(pool)

    def _feasible(self, archs: list[Architecture]) -> list[Architecture]:
        """The architectures whose known costs keep the objectives' bounds."""
        bounded = [o for o in self.objectives if o.bound is not None and o not in self.modelled]
        if not bounded or not archs:
            return archs
        costs = self._known(archs)
        return [a for i, a in enumerate(archs) if all(o.feasible(costs[o.name][i]) for o in bounded)]

    def _chunk(self, step: int) -> list[Architecture]:
        if step not in self._chunks:
            for old in [s for s in self._chunks if s < self._step]:
                del self._chunks[old]
            size = -(-self.candidates // _CHUNKS)
            self._chunks[step] = self.space.sample_many(size, np.random.default_rng([self._pool_seed, step]))
        return self._chunks[step]

    def _forget(self, pool: list[Architecture], ok: list[EvalResult]) -> None:
        """Keep cached features and costs only for the pool and the evaluated architectures."""
        keep = {a.arch_id for a in pool} | {r.arch_id for r in ok}
        self.model.encoder.forget(keep)
        self._costs.forget(keep)

    def _known(self, archs: Sequence[Architecture]) -> dict[str, np.ndarray]:
        """The known costs of each architecture, by name (cached)."""
        rows = self._costs(archs)
        return {name: rows[:, j] for j, name in enumerate(self.cost_names)}

    def _acquisition(self, ok: list[EvalResult], pool: list[Architecture]) -> np.ndarray:
        seen = [r.arch for r in ok]
        seen_costs = self._known(seen)

        def observed(objective: Objective) -> np.ndarray:  # to be maximized
            known = seen_costs.get(objective.name)
            return objective.sign() * np.array(known if known is not None else [r.value(objective.name) for r in ok])

        if self.mode == "improvement":
            (metric,) = self.modelled
            target = observed(metric)
            predicted = self.model.fit(seen, target).predict(pool)
            return expected_improvement(predicted.mean, predicted.std, target.max())
        if self.mode == "hypervolume":
            (metric,) = self.modelled
            (cost,) = (o for o in self.objectives if o is not metric)
            target = observed(metric)
            predicted = self.model.fit(seen, target).predict(pool)
            seen_cost = -observed(cost)
            pool_cost = -cost.sign() * self._known(pool)[cost.name]
            floor = target.min() if metric.bound is None else metric.sign() * metric.bound
            reference = (float(floor), float(max(seen_cost.max(), pool_cost.max())))
            return expected_hypervolume_improvement(
                predicted.mean, predicted.std, pool_cost, np.c_[target, seen_cost], reference
            )
        values = np.column_stack([observed(o) for o in self.objectives])
        low, span = values.min(axis=0), np.ptp(values, axis=0) + 1e-12
        target = chebyshev((values - low) / span, self.rng.dirichlet(np.ones(len(self.objectives))))
        predicted = self.model.fit(seen, target).predict(pool)
        return expected_improvement(predicted.mean, predicted.std, target.max())

    # -- learning ------------------------------------------------------------------------------------------------
    def tell(self, results: Sequence[EvalResult]) -> None:
        self.results.extend(results)
        self.proposed.update(r.arch_id for r in results)
