"""Neural architecture search for the Pareto front of accuracy versus cost.

The public API: import from ``nas``, never from a submodule. Names load on first use, so that
``import nas`` (and the command line) starts without importing torch, Optuna or pandas.

Example:
    >>> import nas
    >>> space = nas.create_space("nb201", input_shape=(3, 32, 32), num_classes=10)
    >>> arch = space.sample(0)
    >>> space.cost(arch).params > 0
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.analysis.ranking import RankAgreement, agreement, rank_agreement
    from nas.analysis.report import write_report
    from nas.core.capabilities import KnowsCosts, Prepares, ReadsData, TabularLookup, WeightSharing
    from nas.core.context import create_context
    from nas.core.cost import Cost
    from nas.core.encodings import ENCODINGS, Encoder, KnownCosts, space_costs
    from nas.core.errors import (
        ExportMismatchError,
        InvalidArchitectureError,
        InvalidOptionError,
        MissingDataError,
        MissingExtraError,
        NASError,
        PluginError,
        RunLockedError,
        StoreError,
        UnknownNameError,
        WorkerSetupError,
    )
    from nas.core.evaluation import (
        EVALUATORS,
        DataSpec,
        Direction,
        EvalResult,
        Evaluator,
        EvaluatorContext,
        Figure,
        Objective,
        Provenance,
        Status,
        Unit,
        create_evaluator,
        register_evaluator,
        resolve_objectives,
    )
    from nas.core.options import Options, validate_options
    from nas.core.pareto import ParetoFront, hypervolume, non_dominated_sort, pareto_mask
    from nas.core.plugins import load_plugins
    from nas.core.predictors import (
        PREDICTORS,
        Prediction,
        Predictor,
        PredictorOptions,
        create_predictor,
        register_predictor,
    )
    from nas.core.preprocessing import DataRecord, Preprocessing
    from nas.core.registry import Registry
    from nas.core.space import (
        SPACES,
        Architecture,
        CellGraph,
        Choice,
        NetworkOptions,
        NetworkSpace,
        SearchSpace,
        Seed,
        Task,
        create_space,
        list_spaces,
        network_space,
        register_space,
    )
    from nas.deploy.export import check_onnx, check_torchscript, export_model, export_onnx, export_torchscript
    from nas.deploy.latency import Backend, Latency, measure_latency
    from nas.deploy.models import export_run, verify_run
    from nas.search.config import ExperimentConfig, load_config
    from nas.search.experiment import Experiment, StopReason, run_search
    from nas.search.lease import RunLease
    from nas.search.run import Run, load_run
    from nas.search.runners import EvaluatorSpec, LocalRunner, Runner, create_runner
    from nas.search.store import ResultStore
    from nas.search.strategies import (
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

#: Each public name and the module that defines it.
_MODULES: dict[str, str] = {
    "Architecture": "nas.core.space",
    "Backend": "nas.deploy.latency",
    "CellGraph": "nas.core.space",
    "Choice": "nas.core.space",
    "Constrained": "nas.search.strategies",
    "Cost": "nas.core.cost",
    "DataRecord": "nas.core.preprocessing",
    "DataSpec": "nas.core.evaluation",
    "DedupKey": "nas.search.strategies",
    "Deduplicated": "nas.search.strategies",
    "Direction": "nas.core.evaluation",
    "ENCODINGS": "nas.core.encodings",
    "EVALUATORS": "nas.core.evaluation",
    "Encoder": "nas.core.encodings",
    "EvalResult": "nas.core.evaluation",
    "Evaluator": "nas.core.evaluation",
    "EvaluatorContext": "nas.core.evaluation",
    "EvaluatorSpec": "nas.search.runners",
    "Experiment": "nas.search.experiment",
    "ExperimentConfig": "nas.search.config",
    "ExportMismatchError": "nas.core.errors",
    "Figure": "nas.core.evaluation",
    "InvalidArchitectureError": "nas.core.errors",
    "InvalidOptionError": "nas.core.errors",
    "KnownCosts": "nas.core.encodings",
    "KnowsCosts": "nas.core.capabilities",
    "Latency": "nas.deploy.latency",
    "LocalRunner": "nas.search.runners",
    "LocalSearch": "nas.search.strategies",
    "MissingDataError": "nas.core.errors",
    "MissingExtraError": "nas.core.errors",
    "NASError": "nas.core.errors",
    "NetworkOptions": "nas.core.space",
    "NetworkSpace": "nas.core.space",
    "Objective": "nas.core.evaluation",
    "Options": "nas.core.options",
    "OptunaStrategy": "nas.search.strategies",
    "PREDICTORS": "nas.core.predictors",
    "ParetoFront": "nas.core.pareto",
    "PluginError": "nas.core.errors",
    "Prediction": "nas.core.predictors",
    "Predictor": "nas.core.predictors",
    "PredictorGuided": "nas.search.strategies",
    "PredictorOptions": "nas.core.predictors",
    "Prepares": "nas.core.capabilities",
    "Preprocessing": "nas.core.preprocessing",
    "Provenance": "nas.core.evaluation",
    "RandomStrategy": "nas.search.strategies",
    "RankAgreement": "nas.analysis.ranking",
    "ReadsData": "nas.core.capabilities",
    "Registry": "nas.core.registry",
    "RegularizedEvolution": "nas.search.strategies",
    "ResultStore": "nas.search.store",
    "Run": "nas.search.run",
    "RunLease": "nas.search.lease",
    "RunLockedError": "nas.core.errors",
    "Runner": "nas.search.runners",
    "SPACES": "nas.core.space",
    "STRATEGIES": "nas.search.strategies",
    "SearchSpace": "nas.core.space",
    "Seed": "nas.core.space",
    "Status": "nas.core.evaluation",
    "StopReason": "nas.search.experiment",
    "StoreError": "nas.core.errors",
    "Strategy": "nas.search.strategies",
    "TabularLookup": "nas.core.capabilities",
    "Task": "nas.core.space",
    "Unit": "nas.core.evaluation",
    "UnknownNameError": "nas.core.errors",
    "WeightSharing": "nas.core.capabilities",
    "WorkerSetupError": "nas.core.errors",
    "agreement": "nas.analysis.ranking",
    "check_onnx": "nas.deploy.export",
    "check_torchscript": "nas.deploy.export",
    "create_context": "nas.core.context",
    "create_evaluator": "nas.core.evaluation",
    "create_predictor": "nas.core.predictors",
    "create_runner": "nas.search.runners",
    "create_space": "nas.core.space",
    "create_strategy": "nas.search.strategies",
    "export_model": "nas.deploy.export",
    "export_onnx": "nas.deploy.export",
    "export_run": "nas.deploy.models",
    "export_torchscript": "nas.deploy.export",
    "hypervolume": "nas.core.pareto",
    "list_spaces": "nas.core.space",
    "load_config": "nas.search.config",
    "load_plugins": "nas.core.plugins",
    "load_run": "nas.search.run",
    "measure_latency": "nas.deploy.latency",
    "network_space": "nas.core.space",
    "non_dominated_sort": "nas.core.pareto",
    "pareto_mask": "nas.core.pareto",
    "rank_agreement": "nas.analysis.ranking",
    "register_evaluator": "nas.core.evaluation",
    "register_predictor": "nas.core.predictors",
    "register_space": "nas.core.space",
    "register_strategy": "nas.search.strategies",
    "resolve_objectives": "nas.core.evaluation",
    "run_search": "nas.search.experiment",
    "space_costs": "nas.core.encodings",
    "validate_options": "nas.core.options",
    "verify_run": "nas.deploy.models",
    "write_report": "nas.analysis.report",
}

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
    "DataSpec",
    "DedupKey",
    "Deduplicated",
    "Direction",
    "Encoder",
    "EvalResult",
    "Evaluator",
    "EvaluatorContext",
    "EvaluatorSpec",
    "Experiment",
    "ExperimentConfig",
    "ExportMismatchError",
    "Figure",
    "InvalidArchitectureError",
    "InvalidOptionError",
    "KnownCosts",
    "KnowsCosts",
    "Latency",
    "LocalRunner",
    "LocalSearch",
    "MissingDataError",
    "MissingExtraError",
    "NASError",
    "NetworkOptions",
    "NetworkSpace",
    "Objective",
    "Options",
    "OptunaStrategy",
    "ParetoFront",
    "PluginError",
    "Prediction",
    "Predictor",
    "PredictorGuided",
    "PredictorOptions",
    "Prepares",
    "Preprocessing",
    "Provenance",
    "RandomStrategy",
    "RankAgreement",
    "ReadsData",
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
    "TabularLookup",
    "Task",
    "Unit",
    "UnknownNameError",
    "WeightSharing",
    "WorkerSetupError",
    "agreement",
    "check_onnx",
    "check_torchscript",
    "create_context",
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
    "load_plugins",
    "load_run",
    "measure_latency",
    "network_space",
    "non_dominated_sort",
    "pareto_mask",
    "rank_agreement",
    "register_evaluator",
    "register_predictor",
    "register_space",
    "register_strategy",
    "resolve_objectives",
    "run_search",
    "space_costs",
    "validate_options",
    "verify_run",
    "write_report",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
