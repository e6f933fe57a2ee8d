"""The benchmarks behind ``nas bench``: search strategies (``nb201``, and ``search`` on any table a config names),
zero-cost proxies (``proxies``) and performance predictors (``predictors``), each against NAS-Bench-201's exact
ground truth, and supernets (``supernet``) against training from scratch."""

from nas.analysis.bench._predictors import bench_predictors
from nas.analysis.bench._proxies import BENCH_PROXIES, bench_proxies
from nas.analysis.bench._search import (
    OPTUNA_BASELINES,
    Problem,
    Run,
    Scorer,
    bench_config,
    bench_nb201,
    bench_problem,
    make_strategy,
    search,
    strategy_names,
)
from nas.analysis.bench._supernet import VARIANTS as SUPERNET_VARIANTS
from nas.analysis.bench._supernet import bench_supernet

__all__ = [
    "BENCH_PROXIES",
    "OPTUNA_BASELINES",
    "SUPERNET_VARIANTS",
    "Problem",
    "Run",
    "Scorer",
    "bench_config",
    "bench_nb201",
    "bench_predictors",
    "bench_problem",
    "bench_proxies",
    "bench_supernet",
    "make_strategy",
    "search",
    "strategy_names",
]
