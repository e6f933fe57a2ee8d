"""Ranking evaluated architectures by their objectives: one place for single- and multi-objective comparisons."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.core.evaluation import EvalResult, Objective
from nas.core.pareto import non_dominated_sort


def pareto_ranks(results: Sequence[EvalResult], objectives: Sequence[Objective]) -> np.ndarray:
    """The non-dominated front (0 = best) of each result among ``results``.

    With one objective the fronts are simply the distinct values, best first; infeasible results (a bound broken)
    rank after every feasible one.
    """
    if not results:
        return np.zeros(0, dtype=int)
    values = np.array([[r.value(o.name) for o in objectives] for r in results], dtype=float)
    ranks = np.empty(len(results), dtype=int)
    for front, members in enumerate(non_dominated_sort(values, [o.resolved for o in objectives])):
        ranks[members] = front
    feasible = np.array([all(o.feasible(r.value(o.name)) for o in objectives) for r in results])
    return np.where(feasible, ranks, ranks + len(results))


def best_indices(results: Sequence[EvalResult], objectives: Sequence[Objective]) -> np.ndarray:
    """Indices of the results in the first front (for one objective: those with the best value)."""
    ranks = pareto_ranks(results, objectives)
    return np.flatnonzero(ranks == ranks.min()) if len(ranks) else ranks
