"""Ranking diagnostics: how well a cheap evaluator (predictor, proxy, supernet) orders architectures the way a trusted
one (training, a table) does. A search only needs the order to be right, so rank statistics are the figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from nas.core.errors import InvalidOptionError
from nas.core.evaluation import Evaluator
from nas.core.space import Architecture


@dataclass(frozen=True)
class RankAgreement:
    """Agreement of two scorings of the same architectures (higher is better in both)."""

    kendall_tau: float
    spearman: float
    precision_at_k: float  # share of the trusted top k that the cheap scoring also puts in its top k
    k: int
    count: int  # architectures scored by both

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def agreement(
    cheap: Sequence[float] | np.ndarray, truth: Sequence[float] | np.ndarray, top_k: int = 10
) -> RankAgreement:
    """Kendall's tau-b, Spearman's rho and precision@k between two scorings of the same architectures."""
    from scipy.stats import kendalltau, spearmanr  # imported on first use: scipy.stats is slow to import

    cheap_values, true_values = np.asarray(cheap, dtype=float), np.asarray(truth, dtype=float)
    if cheap_values.shape != true_values.shape or cheap_values.ndim != 1 or len(cheap_values) < 2:
        raise InvalidOptionError(
            f"rank agreement needs two equally long lists of at least 2 scores; got {cheap_values.shape} and "
            f"{true_values.shape}"
        )
    if top_k < 1:
        raise InvalidOptionError(f"top_k must be a positive integer; got {top_k}")
    k = min(top_k, len(true_values))
    top_cheap = set(np.argsort(-cheap_values, kind="stable")[:k].tolist())
    top_true = set(np.argsort(-true_values, kind="stable")[:k].tolist())
    return RankAgreement(
        kendall_tau=float(kendalltau(cheap_values, true_values).statistic),
        spearman=float(spearmanr(cheap_values, true_values).statistic),
        precision_at_k=len(top_cheap & top_true) / k,
        k=k,
        count=len(true_values),
    )


def rank_agreement(
    cheap: Evaluator,
    truth: Evaluator,
    archs: Sequence[Architecture],
    metric: str = "accuracy",
    truth_metric: str | None = None,
    top_k: int = 10,
) -> RankAgreement:
    """Evaluate ``archs`` with both evaluators and compare the orders they give on ``metric`` (``truth_metric`` for
    the trusted one, when it is named differently). Architectures that fail in either are left out."""
    pairs = [
        (c.value(metric), t.value(truth_metric or metric))
        for c, t in zip(cheap.evaluate(archs), truth.evaluate(archs), strict=True)
        if c.ok and t.ok
    ]
    if len(pairs) < 2:
        raise InvalidOptionError(
            f"only {len(pairs)} of {len(archs)} architectures were evaluated by both evaluators; at least 2 are needed"
        )
    cheap_values, true_values = zip(*pairs, strict=True)
    return agreement(cheap_values, true_values, top_k)
