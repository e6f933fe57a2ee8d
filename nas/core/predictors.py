"""The `Predictor` contract: learn a metric from evaluated architectures, predict it with uncertainty for new ones.

Implementations (random forest, LightGBM, MLP ensemble, Gaussian process) live in the ``evaluators`` package and
are found through the registry's entry points.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BeforeValidator, Field

from nas.core.encodings import Encoder, KnownCosts
from nas.core.errors import InvalidOptionError
from nas.core.evaluation import Evaluator
from nas.core.options import Options
from nas.core.registry import Registry
from nas.core.space import Architecture, SearchSpace


@dataclass(frozen=True)
class Prediction:
    """Predicted mean and standard deviation of a metric, one entry per architecture."""

    mean: np.ndarray
    std: np.ndarray


class PredictorOptions(Options):
    """The options every predictor has: the `Encoder`'s encodings (one name or several of `nas.ENCODINGS`; by default
    its choice for the space)."""

    encoding: (
        Annotated[tuple[str, ...], BeforeValidator(lambda e: (e,) if isinstance(e, str) else e), Field(strict=False)]
        | None
    ) = None


class Predictor(ABC):
    """A surrogate model of one metric over a search space.

    Call order: `fit` on evaluated architectures and their values, then `predict` for any architectures; `fit` again
    (from scratch) as more are evaluated. Architectures are turned into features by an `Encoder`; targets are
    standardized before they reach the model. Subclasses implement `_fit` and `_predict` on those arrays, and may
    extend `PredictorOptions` (their ``Options``); the random-forest predictor is the worked example.

    Args:
        space: the search space.
        seed: seeds the model's randomness: the same data and seed give the same predictions.
        known_costs: the costs of the ``costs`` encoding (default MACs and parameters).
        proxies: a cheap evaluator (zero-cost proxies, say) whose metrics become features too.
        options: the validated options (`PredictorOptions` or the subclass's model); None: the defaults.
    """

    name: ClassVar[str]
    Options: ClassVar[type[Options]] = PredictorOptions

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        known_costs: KnownCosts | None = None,
        proxies: Evaluator | None = None,
        options: PredictorOptions | None = None,
    ) -> None:
        options = PredictorOptions() if options is None else options
        self.space = space
        self.encoder = Encoder(space, options.encoding, known_costs, proxies=proxies)
        self.seed = seed
        self._shift: float | None = None
        self._scale = 1.0

    def fit(self, archs: Sequence[Architecture], targets: Sequence[float] | np.ndarray) -> Predictor:
        """Learn ``targets[i]``, the metric of ``archs[i]``; returns the predictor."""
        values = np.asarray(targets, dtype=float).ravel()
        if len(values) != len(archs) or len(values) < 2 or not np.isfinite(values).all():
            raise InvalidOptionError(
                f"{self.name} needs at least 2 architectures and as many finite targets; got {len(archs)} "
                f"architectures and {len(values)} targets ({int((~np.isfinite(values)).sum())} not finite)"
            )
        self._shift, self._scale = float(values.mean()), float(values.std()) or 1.0
        self._fit(self.encoder(archs), (values - self._shift) / self._scale)
        return self

    def predict(self, archs: Sequence[Architecture]) -> Prediction:
        """The predicted metric of each architecture; architectures with the same features are predicted once."""
        if self._shift is None:
            raise InvalidOptionError(f"{self.name}: fit the predictor on evaluated architectures before predicting")
        distinct, inverse = np.unique(self.encoder(archs), axis=0, return_inverse=True)
        mean, std = self._predict(distinct)
        inverse = inverse.ravel()
        return Prediction(self._shift + self._scale * mean[inverse], self._scale * np.maximum(std[inverse], 1e-9))

    @abstractmethod
    def _fit(self, features: np.ndarray, targets: np.ndarray) -> None:
        """Fit the model to standardized targets."""

    @abstractmethod
    def _predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the standardized target at each row."""


PREDICTORS: Registry[Predictor] = Registry("predictor", "nas.predictors")


def register_predictor(name: str):  # type: ignore[no-untyped-def]
    """Class decorator: make a `Predictor` subclass available to `create_predictor` under ``name``."""
    return PREDICTORS.register(name)


def create_predictor(
    name: str,
    space: SearchSpace,
    *,
    seed: int = 0,
    known_costs: KnownCosts | None = None,
    proxies: Evaluator | None = None,
    **options: Any,
) -> Predictor:
    """Create a registered predictor with its options, e.g. ``create_predictor("lightgbm", space, seed=0,
    encoding="onehot")``; `InvalidOptionError` names a bad option and what is accepted."""
    return PREDICTORS.create(name, space, seed, known_costs, proxies, **options)
