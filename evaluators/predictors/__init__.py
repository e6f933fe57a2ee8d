"""Performance predictors (registered with `nas` under ``nas.predictors``) and the ``predictor`` evaluator."""

from evaluators.predictors._evaluator import PredictorEvaluator
from evaluators.predictors._models import GaussianProcess, LightGBM, MLPEnsemble, RandomForest

__all__ = ["GaussianProcess", "LightGBM", "MLPEnsemble", "PredictorEvaluator", "RandomForest"]
