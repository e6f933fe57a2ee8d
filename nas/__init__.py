"""Neural architecture search for the Pareto front of accuracy versus cost.

The public API: import from ``nas``, never from a submodule.

Example:
    >>> import nas
    >>> space = nas.create_space("nb201", input_shape=(3, 32, 32), num_classes=10)
    >>> arch = space.sample(0)
    >>> space.cost(arch).params > 0
    True
"""

from __future__ import annotations

from nas.config import ExperimentConfig, load_config
from nas.cost import Cost
from nas.deploy import export_run, verify_run
from nas.encodings import ENCODINGS, Encoder, KnownCosts, space_costs
from nas.errors import (
    ExportMismatchError,
    InvalidArchitectureError,
    InvalidOptionError,
    MissingDataError,
    MissingExtraError,
    NASError,
    RunLockedError,
    StoreError,
    UnknownNameError,
)
from nas.evaluation import (
    EVALUATORS,
    Direction,
    EvalResult,
    Evaluator,
    Objective,
    Provenance,
    Status,
    create_evaluator,
    register_evaluator,
)
from nas.experiment import Experiment, StopReason, run_search
from nas.export import check_onnx, check_torchscript, export_model, export_onnx, export_torchscript
from nas.latency import Backend, Latency, measure_latency
from nas.lease import RunLease
from nas.pareto import ParetoFront, hypervolume, non_dominated_sort, pareto_mask
from nas.predictors import PREDICTORS, Prediction, Predictor, create_predictor, register_predictor
from nas.preprocessing import DataRecord, Preprocessing
from nas.ranking import RankAgreement, agreement, rank_agreement
from nas.registry import Registry
from nas.report import write_report
from nas.run import Run, load_run
from nas.runners import EvaluatorSpec, LocalRunner, Runner, create_runner
from nas.space import Architecture, CellGraph, Choice, SearchSpace, Seed
from nas.spaces import SPACES, create_space, list_spaces, register_space
from nas.store import ResultStore
from nas.strategies import (
    STRATEGIES,
    Constrained,
    DedupKey,
    Deduplicated,
    LocalSearch,
    OptunaStrategy,
    PredictorGuided,
    RandomStrategy,
    RegularizedEvolution,
    Strategy,
    create_strategy,
    register_strategy,
)

__all__ = [
    "ENCODINGS",
    "EVALUATORS",
    "PREDICTORS",
    "SPACES",
    "STRATEGIES",
    "Architecture",
    "Backend",
    "CellGraph",
    "Choice",
    "Constrained",
    "Cost",
    "DataRecord",
    "DedupKey",
    "Deduplicated",
    "Direction",
    "Encoder",
    "EvalResult",
    "Evaluator",
    "EvaluatorSpec",
    "Experiment",
    "ExperimentConfig",
    "ExportMismatchError",
    "InvalidArchitectureError",
    "InvalidOptionError",
    "KnownCosts",
    "Latency",
    "LocalRunner",
    "LocalSearch",
    "MissingDataError",
    "MissingExtraError",
    "NASError",
    "Objective",
    "OptunaStrategy",
    "ParetoFront",
    "Prediction",
    "Predictor",
    "PredictorGuided",
    "Preprocessing",
    "Provenance",
    "RandomStrategy",
    "RankAgreement",
    "Registry",
    "RegularizedEvolution",
    "ResultStore",
    "Run",
    "RunLease",
    "RunLockedError",
    "Runner",
    "SearchSpace",
    "Seed",
    "Status",
    "StopReason",
    "StoreError",
    "Strategy",
    "UnknownNameError",
    "agreement",
    "check_onnx",
    "check_torchscript",
    "create_evaluator",
    "create_predictor",
    "create_runner",
    "create_space",
    "create_strategy",
    "export_model",
    "export_onnx",
    "export_run",
    "export_torchscript",
    "hypervolume",
    "list_spaces",
    "load_config",
    "load_run",
    "measure_latency",
    "non_dominated_sort",
    "pareto_mask",
    "rank_agreement",
    "register_evaluator",
    "register_predictor",
    "register_space",
    "register_strategy",
    "run_search",
    "space_costs",
    "verify_run",
    "write_report",
]
