"""Benchmarking strategies against a table's exact ground truth: NAS-Bench-201's (``nas bench nb201``) or any table
evaluator's (``nas bench search CONFIG``).

Definitions (contract):

- The budget counts accuracy evaluations of distinct architectures (every strategy runs deduplicated by
  ``arch_id``); cost objectives (MACs, params, a device's latency) count as known and cheap.
- One objective: regret = the table's best value minus the best found, in the objective's direction (for
  NAS-Bench-201's accuracy, in percentage points).
- Two objectives: each normalized to [0, 1] by its minimum and maximum over the whole table; reference point = (the
  table's median of the first, the worst value of the second: for accuracy and a cost, the maximum cost).
  ``hv_ratio`` = hypervolume of the found front / hypervolume of the table's true front; ``front_recovery`` =
  fraction of the true front's architectures found. A lookup that fails (an architecture the table lacks) finds
  nothing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.core.capabilities import KnowsCosts, TabularLookup
from nas.core.context import create_context
from nas.core.errors import InvalidOptionError
from nas.core.evaluation import DataSpec, Evaluator, Objective, create_evaluator, figure_keys, resolve_objectives
from nas.core.pareto import hypervolume, normalize, pareto_mask
from nas.core.space import Architecture, SearchSpace
from nas.search.strategies import STRATEGIES, Deduplicated, Strategy, create_strategy

if TYPE_CHECKING:
    from nas.search.config import ExperimentConfig

#: Optuna's samplers run through the bridge as baselines, under these names.
OPTUNA_BASELINES = {"optuna-tpe": "tpe", "optuna-nsga2": "nsga2", "optuna-motpe": "motpe"}


@dataclass
class Problem:
    """The benchmark's ground truth: the table's values of the objectives for every architecture of its space."""

    evaluator: Evaluator
    space: SearchSpace
    objectives: tuple[Objective, ...]
    archs: list[Architecture]
    values: np.ndarray  # (architectures, objectives), in the objectives' units

    @classmethod
    def of(cls, evaluator: Evaluator, space: SearchSpace, objectives: Sequence[Objective]) -> Problem:
        """The ground truth of a table evaluator (`TabularLookup`) for one or two ``objectives``, given without a
        direction where the evaluator declares it."""
        if not isinstance(evaluator, TabularLookup):
            raise InvalidOptionError(
                f"a benchmark needs an evaluator that looks every architecture up in a table (such as table or "
                f"nb201-table); {evaluator.name!r} does not"
            )
        if not 1 <= len(objectives) <= 2:
            raise InvalidOptionError(
                f"a benchmark scores one objective (regret) or two (hypervolume); got {len(objectives)}"
            )
        resolved = resolve_objectives(objectives, evaluator.figures(), f"evaluator {evaluator.name!r}")
        table = evaluator.table()
        columns = [next((k for k in figure_keys(o.name) if k in table.columns), o.name) for o in resolved]
        return cls(evaluator, space, resolved, evaluator.archs(), table[columns].to_numpy(float))

    @classmethod
    def nb201(cls, data_dir: str | None, dataset: str, objectives: Sequence[Objective]) -> Problem:
        if objectives[0].name != "accuracy" or len(objectives) > 2:
            raise InvalidOptionError(
                "nb201 benchmark objectives are accuracy, optionally with one cost: macs, params or latency:DEVICE; "
                f"got {', '.join(o.name for o in objectives)}"
            )
        devices = [o.name.partition(":")[2] for o in objectives if o.name.startswith("latency:")]
        context = create_context("nb201-table", "nb201", DataSpec(dataset, data_dir))
        evaluator = create_evaluator("nb201-table", context, devices=devices)
        return cls.of(evaluator, context.space, objectives)

    @property
    def directions(self) -> list[Any]:
        return [o.resolved for o in self.objectives]


@dataclass
class Run:
    """One search: the values found, query by query, and the time spent in ask and tell."""

    found: list[Architecture]
    values: np.ndarray
    ask_tell_s: list[float]


def search(problem: Problem, strategy: Strategy, budget: int) -> Run:
    """Run ``strategy`` (deduplicated) one query at a time until ``budget`` distinct architectures are evaluated."""
    strategy = Deduplicated(strategy)
    found: list[Architecture] = []
    values: list[list[float]] = []
    overhead: list[float] = []
    told: list[Any] = []
    while len(found) < budget:
        start = time.perf_counter()
        strategy.tell(told)
        archs = strategy.ask(1)
        overhead.append(time.perf_counter() - start)
        if not archs:
            break
        told = problem.evaluator.evaluate(archs)
        found += archs
        values += [[r.value(o.name) for o in problem.objectives] for r in told]
    return Run(found, np.array(values, dtype=float).reshape(-1, len(problem.objectives)), overhead)


class Scorer:
    """Scores runs against the problem's ground truth, after every query."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.sign = problem.objectives[0].sign()
        self.best = np.nanmax(self.sign * problem.values[:, 0])
        if len(problem.objectives) == 2:
            finite = np.flatnonzero(np.isfinite(problem.values).all(axis=1))  # the rows the table gives values
            values = problem.values[finite]
            self.lows, self.highs = values.min(axis=0), values.max(axis=0)
            worst = values[:, 1].max() if problem.objectives[1].sign() < 0 else values[:, 1].min()
            self.reference = normalize([[np.median(values[:, 0]), worst]], self.lows, self.highs, problem.directions)[0]
            self.front = {problem.archs[i] for i in finite[pareto_mask(values, problem.directions)]}
            self.true_hv = self._hv(values)

    def _hv(self, values: np.ndarray) -> float:
        values = values[np.isfinite(values).all(axis=1)]  # failed lookups find nothing
        if not len(values):
            return 0.0
        points = normalize(values, self.lows, self.highs, self.problem.directions)
        return hypervolume(points, self.reference, ["max", "max"])

    def curve(self, run: Run) -> list[float]:
        """Regret (one objective) or hv_ratio (two) after each query."""
        if len(self.problem.objectives) == 1:
            found = np.fmax.accumulate(self.sign * run.values[:, 0])  # a failed lookup (NaN) finds nothing
            return list(self.best - found)
        return [self._hv(run.values[: i + 1]) / self.true_hv for i in range(len(run.values))]

    def front_recovery(self, run: Run) -> float:
        return len(self.front.intersection(run.found)) / len(self.front)


def _summary(xs: Sequence[float]) -> dict[str, float]:
    return {"mean": float(np.mean(xs)), "median": float(np.median(xs))}


def strategy_names(name: str) -> list[str]:
    """``all`` -> every registered strategy (but the bare Optuna bridge) and the Optuna baselines."""
    if name != "all":
        return [name]
    return [n for n in STRATEGIES.names() if n != "optuna"] + list(OPTUNA_BASELINES)


def make_strategy(name: str, problem: Problem, seed: int, options: Mapping[str, Any] | None = None) -> Strategy:
    """A registered strategy (with ``options``), or an Optuna baseline (``optuna-tpe``, ...) through the bridge; it
    knows the table's costs."""
    known = problem.evaluator.known_costs if isinstance(problem.evaluator, KnowsCosts) else None
    if name in OPTUNA_BASELINES:
        return create_strategy(
            "optuna", problem.space, problem.objectives, seed, known_costs=known, sampler=OPTUNA_BASELINES[name]
        )
    return create_strategy(name, problem.space, problem.objectives, seed, known_costs=known, **(options or {}))


def bench_nb201(
    data_dir: str | None, dataset: str, objectives: Sequence[str], strategy: str, budget: int, seeds: int
) -> list[dict[str, Any]]:
    """One summary per strategy (see the module docstring for the figures' definitions)."""
    problem = Problem.nb201(data_dir, dataset, [Objective.parse(o) for o in objectives])
    header = {"benchmark": "nb201", "dataset": dataset}
    return bench_problem(problem, strategy_names(strategy), budget, seeds, header)


def bench_config(
    config: ExperimentConfig, strategy: str | None = None, budget: int | None = None, seeds: int = 10
) -> list[dict[str, Any]]:
    """`bench_problem` on the space, table evaluator and objectives of an experiment config: its own strategy (with
    its options) unless ``strategy`` names another (or ``all``), for its budget of evaluations unless ``budget``."""
    from nas.search.experiment import Experiment, absolute_paths  # the search's wiring: only for a config

    budget = budget or config.budget.evaluations
    if budget is None:
        raise InvalidOptionError(f"config {config.name!r} gives no budget.evaluations: give the benchmark a budget")
    experiment = Experiment.wire(absolute_paths(config), Path(config.name))
    problem = Problem.of(experiment.evaluator, experiment.space, experiment.objectives)
    options = {}
    if strategy is None or strategy == config.strategy.name:
        strategy, options = config.strategy.name, dict(config.strategy.options)
    header = {"benchmark": config.name, "evaluator": config.evaluator.name, "space": config.space.name}
    return bench_problem(problem, strategy_names(strategy), budget, seeds, header, options)


def bench_problem(
    problem: Problem,
    strategies: Sequence[str],
    budget: int,
    seeds: int,
    header: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One summary per strategy, after ``header``'s keys (see the module docstring for the figures' definitions)."""
    if budget < 1 or seeds < 1:
        raise InvalidOptionError(f"budget and seeds must be positive integers; got {budget} and {seeds}")
    scorer = Scorer(problem)
    rows = []
    for name in strategies:
        runs = [search(problem, make_strategy(name, problem, seed, options), budget) for seed in range(seeds)]
        curves = [scorer.curve(run) for run in runs]
        length = min(len(c) for c in curves)
        row: dict[str, Any] = {
            **header,
            "objectives": [o.name for o in problem.objectives],
            "strategy": name,
            "budget": budget,
            "seeds": seeds,
        }
        finals = [c[-1] for c in curves]
        if len(problem.objectives) == 1:
            row["final_regret"] = _summary(finals)
        else:
            row["hv_ratio"] = _summary(finals)
            row["front_recovery"] = _summary([scorer.front_recovery(run) for run in runs])
        row["ask_tell_ms"] = {"median": 1e3 * statistics.median(t for run in runs for t in run.ask_tell_s)}
        row["curve"] = [float(np.mean([c[i] for c in curves])) for i in range(length)]
        rows.append(row)
    return rows
