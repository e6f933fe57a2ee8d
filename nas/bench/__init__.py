"""The benchmarks behind ``nas bench``: search strategies (``nb201``) and performance predictors
(``predictors``), each against NAS-Bench-201's exact ground truth."""

from nas.bench._predictors import bench_predictors
from nas.bench._search import (
    OPTUNA_BASELINES,
    Problem,
    Run,
    Scorer,
    bench_nb201,
    make_strategy,
    search,
    strategy_names,
)

__all__ = [
    "OPTUNA_BASELINES",
    "Problem",
    "Run",
    "Scorer",
    "bench_nb201",
    "bench_predictors",
    "make_strategy",
    "search",
    "strategy_names",
]
