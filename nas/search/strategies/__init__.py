"""Search strategies: the `Strategy` contract, the registry, the strategies, and the wrappers for any of them.

The Optuna bridge (`OptunaStrategy`) is imported on first use, and with it Optuna: the registry declares it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas.search.strategies._base import STRATEGIES, Strategy, create_strategy, register_strategy
from nas.search.strategies._evolution import RegularizedEvolution
from nas.search.strategies._local_search import LocalSearch
from nas.search.strategies._predictor import PredictorGuided
from nas.search.strategies._random import RandomStrategy
from nas.search.strategies._wrappers import Constrained, DedupKey, Deduplicated

if TYPE_CHECKING:
    from nas.search.strategies._optuna import OptunaStrategy

STRATEGIES.declare("optuna", "nas.search.strategies._optuna:OptunaStrategy")

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


def __getattr__(name: str) -> Any:
    """`OptunaStrategy`, imported on first use (PEP 562)."""
    if name == "OptunaStrategy":
        return STRATEGIES.get("optuna")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
