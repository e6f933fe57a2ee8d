"""Search strategies: the `Strategy` contract, the registry, the strategies, and the wrappers for any of them."""

from __future__ import annotations

from nas.strategies._base import STRATEGIES, Strategy, create_strategy, register_strategy
from nas.strategies._evolution import RegularizedEvolution
from nas.strategies._local_search import LocalSearch
from nas.strategies._optuna import OptunaStrategy
from nas.strategies._predictor import PredictorGuided
from nas.strategies._random import RandomStrategy
from nas.strategies._wrappers import Constrained, DedupKey, Deduplicated

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
