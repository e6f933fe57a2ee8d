"""The registered performance predictors: random forest, LightGBM ensemble, MLP ensemble, Gaussian process.

Each turns a fitted model's spread into the uncertainty: the trees of the forest, the members of an ensemble, the
posterior of the Gaussian process.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from nas import Evaluator, KnownCosts, MissingExtraError, Predictor, SearchSpace, register_predictor
from nas.core.predictors import PredictorOptions

try:
    import lightgbm
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel
    from sklearn.neural_network import MLPRegressor
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(
        f"predictors need scikit-learn and lightgbm: pip install 'nas-pareto[predictors]' ({error})"
    ) from error

#: Members of the LightGBM and MLP ensembles.
ENSEMBLE_SIZE = 5


def _spread(predictions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    stacked = np.stack(predictions)
    return stacked.mean(axis=0), stacked.std(axis=0)


@register_predictor("random-forest")
class RandomForest(Predictor):
    """A random forest (scikit-learn); the uncertainty is the spread of its trees' predictions.

    Example:
        >>> forest = nas.create_predictor("random-forest", space, seed=0).fit(archs, accuracies)  # doctest: +SKIP
        >>> forest.predict(new_archs).mean  # doctest: +SKIP
    """

    def _fit(self, features: np.ndarray, targets: np.ndarray) -> None:
        self._model = RandomForestRegressor(300, max_features=0.5, random_state=self.seed, n_jobs=1)
        self._model.fit(features, targets)

    def _predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _spread([tree.predict(features) for tree in self._model.estimators_])


@register_predictor("lightgbm")
class LightGBM(Predictor):
    """An ensemble of gradient-boosted tree models (LightGBM), each on its own bagging seed."""

    def _fit(self, features: np.ndarray, targets: np.ndarray) -> None:
        options: dict[str, Any] = {
            "n_estimators": 300,
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_child_samples": 3,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "verbose": -1,
            "n_jobs": 1,
        }
        self._members = [
            lightgbm.LGBMRegressor(random_state=self.seed * ENSEMBLE_SIZE + i, **options).fit(features, targets)
            for i in range(ENSEMBLE_SIZE)
        ]

    def _predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _spread([np.asarray(m.predict(features)) for m in self._members])


@register_predictor("mlp-ensemble")
class MLPEnsemble(Predictor):
    """An ensemble of small multilayer perceptrons (scikit-learn), each from its own initialization."""

    def _fit(self, features: np.ndarray, targets: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._members = [
                MLPRegressor(
                    hidden_layer_sizes=(64, 64),
                    alpha=1e-2,
                    learning_rate_init=3e-3,
                    max_iter=1000,
                    random_state=self.seed * ENSEMBLE_SIZE + i,
                ).fit(features, targets)
                for i in range(ENSEMBLE_SIZE)
            ]

    def _predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _spread([np.asarray(m.predict(features)) for m in self._members])


class GPOptions(PredictorOptions):
    """The Gaussian process's options: besides the encoding, the factor by which the data must grow before its
    kernel is fitted again (at least 1)."""

    refit_growth: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 1.2


@register_predictor("gp")
class GaussianProcess(Predictor):
    """A Gaussian process (Matern 5/2 kernel with a length scale per feature, plus noise).

    Kernel hyperparameters are fitted by maximum likelihood when the data has grown by ``refit_growth`` since the
    last fit and kept otherwise, which makes refitting after each new point cheap; they are the predictor's state.
    """

    Options = GPOptions

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        known_costs: KnownCosts | None = None,
        proxies: Evaluator | None = None,
        options: GPOptions | None = None,
    ) -> None:
        options = GPOptions() if options is None else options
        super().__init__(space, seed, known_costs, proxies, options)
        self.refit_growth = options.refit_growth
        self.theta: list[float] | None = None
        self.fitted_on = 0

    def _fit(self, features: np.ndarray, targets: np.ndarray) -> None:
        kernel = self._kernel(features.shape[1])
        refit = self.theta is None or len(targets) >= self.refit_growth * self.fitted_on
        if not refit:
            kernel = kernel.clone_with_theta(np.array(self.theta))
        self._model = GaussianProcessRegressor(kernel, optimizer="fmin_l_bfgs_b" if refit else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._model.fit(features, targets)
        if refit:
            self.theta, self.fitted_on = self._model.kernel_.theta.tolist(), len(targets)

    def _predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self._model.predict(features, return_std=True)
        return mean, std

    @staticmethod
    def _kernel(width: int) -> Kernel:
        matern = Matern(length_scale=np.full(width, 3.0), length_scale_bounds=(0.1, 100.0), nu=2.5)
        return ConstantKernel(1.0) * matern + WhiteKernel(0.1, (1e-4, 1.0))
