"""Weight-sharing supernets: dynamic layers, supernets of the CNN spaces, their training, and the ``supernet``
evaluator."""

from evaluators.supernet._evaluator import SupernetEvaluator
from evaluators.supernet._layers import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear, centre
from evaluators.supernet._mixture import BalancedAssignment
from evaluators.supernet._networks import (
    SUPERNETS,
    MacroCNNSupernet,
    ResNet20PoolingSupernet,
    Supernet,
    create_supernet,
)
from evaluators.supernet._training import VARIANTS, ArchSampler, SupernetTraining, train_supernets

__all__ = [
    "SUPERNETS",
    "VARIANTS",
    "ArchSampler",
    "BalancedAssignment",
    "DynamicBatchNorm2d",
    "DynamicConv2d",
    "DynamicLinear",
    "MacroCNNSupernet",
    "ResNet20PoolingSupernet",
    "Supernet",
    "SupernetEvaluator",
    "SupernetTraining",
    "centre",
    "create_supernet",
    "train_supernets",
]
