"""Benchmarks against exact ground truth, behind ``nas bench``: search strategies on NAS-Bench-201 (``nb201``)."""

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

__all__ = ["OPTUNA_BASELINES", "Problem", "Run", "Scorer", "bench_nb201", "make_strategy", "search", "strategy_names"]
