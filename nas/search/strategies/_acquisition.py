"""Acquisition functions: how much a candidate with a predicted value (mean, standard deviation) is worth querying.

Written here rather than taken from a Bayesian-optimisation library because the two-objective case uses what such
libraries do not know: one objective (the cost) is known exactly, so the expected hypervolume improvement is a sum
of one-dimensional expected improvements, in closed form.
"""

from __future__ import annotations

import numpy as np


def expected_excess(mean: np.ndarray, std: np.ndarray, level: np.ndarray | float) -> np.ndarray:
    """E[max(Y - level, 0)] for Y ~ N(mean, std²), elementwise; 0 where ``level`` is +inf."""
    from scipy.stats import norm  # imported on first use: scipy.stats is slow to import

    level = np.asarray(level, dtype=float)
    gap = mean - np.where(np.isposinf(level), 0.0, level)
    z = gap / std
    value = gap * norm.cdf(z) + std * norm.pdf(z)
    return np.where(np.isposinf(level), 0.0, value)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``best`` of a maximized value."""
    return expected_excess(mean, std, best)


def expected_hypervolume_improvement(
    mean: np.ndarray,
    std: np.ndarray,
    cost: np.ndarray,
    front: np.ndarray,
    reference: tuple[float, float],
) -> np.ndarray:
    """Exact expected hypervolume improvement of candidates whose value (maximized) is uncertain and whose cost
    (minimized) is known.

    Args:
        mean, std: the predicted value of each candidate.
        cost: each candidate's known cost.
        front: the current front as rows (value, cost); dominated rows are ignored.
        reference: (value, cost) bounding the hypervolume from below in value and from above in cost.

    A candidate at cost c adds, for every value level y between the best value found at cost <= c and its own value,
    a strip as wide as the gap from c to the cheapest found point that reaches y (or the reference cost). Splitting
    the value axis at the front's values makes each piece an expected improvement.
    """
    ref_value, ref_cost = reference
    values, costs = _staircase(front, ref_value)
    uppers = np.append(values, np.inf)  # piece i spans value levels (lowers[i], uppers[i]]
    lowers = np.insert(values, 0, -np.inf)
    right = np.append(costs, ref_cost)  # piece i's strip reaches from c to right[i]
    first = np.searchsorted(costs, cost, side="right")  # the first front point dearer than the candidate
    level = np.maximum(ref_value, np.where(first > 0, lowers[first], -np.inf))
    low = np.maximum(level[:, None], lowers[None, :])
    pieces = np.arange(len(uppers))[None, :] >= first[:, None]
    width = np.where(pieces & (uppers[None, :] > low), right[None, :] - cost[:, None], 0.0)
    m, s = mean[:, None], std[:, None]
    gain = width * (expected_excess(m, s, low) - expected_excess(m, s, uppers[None, :]))
    return np.where(cost < ref_cost, gain.sum(axis=1), 0.0)


def _staircase(front: np.ndarray, ref_value: float) -> tuple[np.ndarray, np.ndarray]:
    """The non-dominated points above ``ref_value``, by increasing cost (and so increasing value)."""
    front = np.asarray(front, dtype=float).reshape(-1, 2)
    front = front[np.lexsort((-front[:, 0], front[:, 1]))]  # by cost, the best value first among equal costs
    cheaper_best = np.maximum.accumulate(np.append(ref_value, front[:, 0]))[:-1]
    keep = front[:, 0] > cheaper_best  # better than everything cheaper, and than the reference
    return front[keep, 0], front[keep, 1]


def chebyshev(values: np.ndarray, weights: np.ndarray, rho: float = 0.05) -> np.ndarray:
    """Augmented Chebyshev scalarization (ParEGO) of rows of values in [0, 1] to be maximized."""
    weighted = weights * values
    return weighted.min(axis=1) + rho * weighted.sum(axis=1)
