"""Search strategies: the `Strategy` contract, the registry, the strategies, and the wrappers for any of them."""

from __future__ import annotations

from nas.search.strategies._base import STRATEGIES, Strategy, create_strategy, register_strategy
from nas.search.strategies._evolution import RegularizedEvolution
from nas.search.strategies._local_search import LocalSearch
from nas.search.strategies._optuna import OptunaStrategy
from nas.search.strategies._predictor import PredictorGuided
from nas.search.strategies._random import RandomStrategy
from nas.search.strategies._wrappers import Constrained, DedupKey, Deduplicated

__all__ = [
    "STRATEGIES",
    "Constrained",
    "DedupKey",
    "Deduplicated",
    "LocalSearch",
    "OptunaStrategy",
    "PredictorGuided",
    "RandomStrategy",
    "RegularizedEvolution",
    "Strategy",
    "create_strategy",
    "register_strategy",
]
