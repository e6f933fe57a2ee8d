"""The built-in surrogate of the predictor-guided strategy: architecture features and a Gaussian process on them."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from nas.errors import MissingExtraError
from nas.space import Architecture, SearchSpace

try:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel
except ImportError:  # pragma: no cover - exercised only without the extra
    GaussianProcessRegressor = None


def one_hot(space: SearchSpace, archs: Sequence[Architecture]) -> np.ndarray:
    """One-hot choices of each architecture, one column per option of each of the space's dimensions."""
    dims = space.dimensions()
    offsets = np.cumsum([0] + [len(d.options) for d in dims])
    features = np.zeros((len(archs), offsets[-1]))
    for row, arch in enumerate(archs):
        for dim, offset in zip(dims, offsets, strict=False):
            features[row, offset + dim.index(arch.choices[dim.name])] = 1.0
    return features


class GaussianProcess:
    """A Gaussian process regressor (Matern 5/2 kernel with a length scale per feature, plus noise) on standardized
    targets. Kernel hyperparameters are fitted by maximum likelihood when the data has grown by ``refit_growth``
    since the last fit and kept otherwise, which makes refitting after each new point cheap."""

    def __init__(self, refit_growth: float = 1.2) -> None:
        if GaussianProcessRegressor is None:
            raise MissingExtraError(
                "the predictor-guided strategy needs scikit-learn: pip install 'nas-pareto[predictors]'"
            )
        self.refit_growth = refit_growth
        self.theta: list[float] | None = None  # the fitted kernel's log-hyperparameters, saved with the strategy
        self.fitted_on = 0
        self._model: GaussianProcessRegressor | None = None

    def fit(self, features: np.ndarray, targets: np.ndarray) -> GaussianProcess:
        self.shift, self.scale = float(targets.mean()), float(targets.std()) or 1.0
        kernel = self._kernel(features.shape[1])
        refit = self.theta is None or len(targets) >= self.refit_growth * self.fitted_on
        if not refit:
            kernel = kernel.clone_with_theta(np.array(self.theta))
        self._model = GaussianProcessRegressor(kernel, optimizer="fmin_l_bfgs_b" if refit else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._model.fit(features, (targets - self.shift) / self.scale)
        if refit:
            self.theta, self.fitted_on = self._model.kernel_.theta.tolist(), len(targets)
        return self

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the target at each row of ``features`` (each distinct row predicted once:
        architectures that compute the same function share their features)."""
        assert self._model is not None, "fit before predict"
        distinct, inverse = np.unique(features, axis=0, return_inverse=True)
        mean, std = self._model.predict(distinct, return_std=True)
        return self.shift + self.scale * mean[inverse.ravel()], self.scale * np.maximum(std[inverse.ravel()], 1e-9)

    @staticmethod
    def _kernel(width: int) -> Kernel:
        matern = Matern(length_scale=np.full(width, 3.0), length_scale_bounds=(0.1, 100.0), nu=2.5)
        return ConstantKernel(1.0) * matern + WhiteKernel(0.1, (1e-4, 1.0))
