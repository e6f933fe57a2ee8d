"""Benchmarking performance predictors on NAS-Bench-201 (``nas bench predictors``).

Definitions (contract): for each seed, ``train_size`` cells drawn at random (seeded) are the training set and all
the other cells of the table the test set; every registered predictor is fitted on the training cells' test
accuracy and ranks the test cells. Figures per predictor over the seeds: mean and median Kendall tau-b and
Spearman rho between predicted and true accuracy on the test set, and the time to fit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas.analysis.ranking import agreement
from nas.core.capabilities import TabularLookup
from nas.core.context import create_context
from nas.core.errors import InvalidOptionError
from nas.core.evaluation import DataSpec, create_evaluator
from nas.core.predictors import PREDICTORS, create_predictor


def _summary(xs: Sequence[float]) -> dict[str, float]:
    return {"mean": float(np.mean(xs)), "median": float(np.median(xs))}


def bench_predictors(
    data_dir: str | None,
    dataset: str,
    train_size: int,
    seeds: int,
    predictors: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The contract's figures for ``predictors`` (default: every registered one); ``options`` gives extra
    constructor options by predictor name."""
    context = create_context("nb201-table", "nb201", DataSpec(dataset, data_dir))
    table = create_evaluator("nb201-table", context, devices=[])
    assert isinstance(table, TabularLookup)
    archs, accuracy = table.archs(), table.table()["accuracy"].to_numpy(float)
    if not 2 <= train_size < len(archs) or seeds < 1:
        raise InvalidOptionError(
            f"train_size must be between 2 and {len(archs) - 1} and seeds positive; got {train_size} and {seeds}"
        )
    names = list(predictors or PREDICTORS.names())
    figures: dict[str, dict[str, list[float]]] = {key: {n: [] for n in names} for key in ("tau", "rho", "fit")}
    for seed in range(seeds):
        train = np.random.default_rng(seed).choice(len(archs), train_size, replace=False)
        test = np.setdiff1d(np.arange(len(archs)), train)
        for name in names:
            start = time.perf_counter()
            predictor = create_predictor(name, context.space, seed=seed, **(options or {}).get(name, {}))
            predictor.fit([archs[i] for i in train], accuracy[train])
            figures["fit"][name].append(time.perf_counter() - start)
            found = agreement(predictor.predict([archs[i] for i in test]).mean, accuracy[test])
            figures["tau"][name].append(found.kendall_tau)
            figures["rho"][name].append(found.spearman)
    return {
        "dataset": dataset,
        "train_size": train_size,
        "seeds": seeds,
        "kendall_tau": {n: _summary(v) for n, v in figures["tau"].items()},
        "spearman": {n: _summary(v) for n, v in figures["rho"].items()},
        "fit_seconds": {n: _summary(v) for n, v in figures["fit"].items()},
    }
