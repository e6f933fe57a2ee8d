"""From an experiment config to a finished search: wiring the parts, the search loop, resuming.

`run_search` is what ``nas search`` calls: it creates (or, with ``resume``, reopens) the run directory, wires the
config's space, evaluator, strategy and store, and lets a runner (local Ray by default) evaluate what the strategy
proposes until the budget is spent. The store is the record of truth; ``search.json`` beside it holds the strategy's
state and the architectures in flight, so a stopped or killed run continues where it was.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nas.config import ExperimentConfig
from nas.errors import InvalidOptionError
from nas.evaluation import EVALUATORS, EvalResult, Evaluator, Objective
from nas.progress import SearchProgress
from nas.registry import options_of
from nas.run import CONFIG_FILE, Run, store_url
from nas.runners import EvaluatorSpec, create_runner
from nas.space import Architecture, SearchSpace
from nas.spaces import create_space
from nas.store import ResultStore
from nas.strategies import STRATEGIES, Constrained, Deduplicated, Strategy

STATE_FILE = "search.json"
#: The search state is saved at most this often (seconds) while cheap evaluations stream in, and after every
#: result of an expensive evaluator.
SAVE_INTERVAL_S = 2.0


#: Where an evaluator prepares its shared state (a trained supernet, for instance) in a run directory.
PREPARE_DIR = "prepare"


@dataclass
class Experiment:
    """A config's parts, built: the space, the evaluator (prepared here, and the spec workers rebuild it from)."""

    config: ExperimentConfig
    space: SearchSpace
    spec: EvaluatorSpec
    evaluator: Evaluator

    @classmethod
    def wire(cls, config: ExperimentConfig, run_dir: Path) -> Experiment:
        """Build the space and the evaluator of ``config``, and prepare the evaluator under ``run_dir``."""
        space = create_space(config.space.name, **config.space.options)
        spec = EvaluatorSpec(config.evaluator.name, evaluator_options(config, space, run_dir))
        evaluator = spec.create()
        checkpoint = evaluator.prepare(run_dir / PREPARE_DIR)
        if checkpoint is not None and "checkpoint" in options_of(type(evaluator)):
            spec = EvaluatorSpec(spec.name, {**spec.options, "checkpoint": str(checkpoint)})
        return cls(config, getattr(evaluator, "space", space), spec, evaluator)

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return tuple(self.config.objectives)

    def strategy(self) -> Strategy:
        """The config's strategy, deduplicating, and screening proposals whose known costs break a bound."""
        options = dict(self.config.strategy.options)
        cls = STRATEGIES.get(self.config.strategy.name)
        if "known_costs" in options_of(cls) and hasattr(self.evaluator, "known_costs"):
            options.setdefault("known_costs", self.evaluator.known_costs)
        inner = STRATEGIES.create(
            self.config.strategy.name, space=self.space, objectives=self.objectives, seed=self.config.seed, **options
        )
        strategy: Strategy = Deduplicated(inner)
        known = set(self.space.cost(self.space.sample(0)).to_dict())
        bounded = [o for o in self.objectives if o.bound is not None and o.name in known]
        return Constrained(strategy, bounded) if bounded else strategy


def evaluator_options(config: ExperimentConfig, space: SearchSpace, run_dir: Path) -> dict[str, Any]:
    """The evaluator's options: the config's, plus what the rest of the config says where the evaluator takes it
    (the space, the dataset and its options, the seed, threads per worker; for training, where to keep weights)."""
    cls = EVALUATORS.get(config.evaluator.name)
    accepted = set(options_of(cls))
    unknown = sorted(set(config.dataset.options) - accepted)
    if unknown:
        raise InvalidOptionError(
            f"dataset.options: evaluator {config.evaluator.name!r} takes no {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(accepted))}"
        )
    implied: dict[str, Any] = {
        "space": space,
        "dataset": config.dataset.name,
        "data_dir": config.dataset.data_dir,
        "seed": config.seed,
        **config.dataset.options,
    }
    implied["threads"] = max(1, int(config.execution.resources.get("cpu", 1)))  # per worker
    if cls.expensive:
        implied["keep_weights"] = str(run_dir / "weights")
    options = dict(config.evaluator.options)
    for key, value in implied.items():
        if key in accepted and value is not None:
            options.setdefault(key, value)
    return options


class Search:
    """The loop a runner drives: proposes what the strategy asks for, within the budget and never an architecture
    already stored; records results in the store, tells the strategy and keeps the state for a resume."""

    def __init__(
        self,
        strategy: Strategy,
        store: ResultStore,
        state_path: Path,
        *,
        evaluations: int | None,
        wall_time_s: float | None,
        progress: SearchProgress,
        save_every_result: bool,
    ) -> None:
        self.strategy, self.store, self.state_path, self.progress = strategy, store, state_path, progress
        self.evaluations, self.wall_time_s = evaluations, wall_time_s
        self.save_every_result = save_every_result
        self.stored = {r.arch_id: r for r in store.results()}
        self.told: set[str] = set()
        self.in_flight: dict[str, Architecture] = {}
        self.queue: list[Architecture] = []  # in flight when the run stopped: evaluated first on resume
        self.elapsed_before = 0.0
        self.started = time.monotonic()
        self._saved = 0.0
        self._restore()

    @property
    def primary(self) -> Objective:
        return self.strategy.objectives[0]

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def remaining(self) -> int | None:
        """Evaluations still to propose (None: no evaluation limit), counting those in flight."""
        if self.evaluations is None:
            return None
        return max(0, self.evaluations - len(self.stored) - len(self.in_flight))

    def propose(self, n: int) -> list[Architecture]:
        remaining = self.remaining()
        if remaining is not None:
            n = min(n, remaining)
        if n <= 0 or (self.wall_time_s is not None and self.elapsed >= self.wall_time_s):
            return []
        archs = self.queue[:n]
        del self.queue[:n]
        for _ in range(3):  # the strategy may propose stored architectures (told now instead): ask again, bounded
            if len(archs) >= n:
                break
            asked = self.strategy.ask(n - len(archs))
            if not asked:
                break
            for arch in asked:
                if arch.arch_id in self.stored:
                    self._tell([self.stored[arch.arch_id]])
                elif arch.arch_id not in self.in_flight:
                    archs.append(arch)
        self.in_flight.update((a.arch_id, a) for a in archs)
        self._save(force=self.save_every_result)
        return archs

    def record(self, results: Sequence[EvalResult]) -> None:
        results = [r for r in results if r.arch_id not in self.stored]
        self.store.add(results)
        for result in results:
            self.stored[result.arch_id] = result
            self.in_flight.pop(result.arch_id, None)
        self._tell(results)
        self.progress.update(results)
        self._save(force=self.save_every_result)

    def close(self) -> None:
        """Save the state for a later resume."""
        self._save(force=True)

    def _tell(self, results: Sequence[EvalResult]) -> None:
        fresh = [r for r in results if r.arch_id not in self.told]
        if fresh:
            self.strategy.tell(fresh)
            self.told.update(r.arch_id for r in fresh)

    def _restore(self) -> None:
        """Continue from the saved state: restore the strategy, requeue what was in flight, tell what it missed."""
        if self.state_path.is_file():
            state = json.loads(self.state_path.read_text())
            try:
                self.strategy.load_state_dict(state["strategy"])
            except (KeyError, TypeError, ValueError) as error:
                raise InvalidOptionError(
                    f"the saved search state in {self.state_path} does not fit strategy "
                    f"{self.strategy.name!r} ({error}): resume with the strategy and options the run started with"
                ) from error
            self.told = set(state["told"])
            self.elapsed_before = float(state["elapsed_s"])
            flying = [Architecture.from_dict(a) for a in state["in_flight"]]
            self.queue = [a for a in flying if a.arch_id not in self.stored]
        self._tell(list(self.stored.values()))  # results stored after the last save (or with no state at all)
        self.progress.update(list(self.stored.values()))

    def _save(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._saved < SAVE_INTERVAL_S:
            return
        state = {
            "strategy": self.strategy.state_dict(),
            "told": sorted(self.told),
            "in_flight": [a.to_dict() for a in [*self.queue, *self.in_flight.values()]],
            "elapsed_s": self.elapsed,
        }
        partial = self.state_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(state))
        os.replace(partial, self.state_path)  # atomic: a kill leaves the old state or the new, never half of one
        self._saved = now


def prepare_run_dir(config: ExperimentConfig, out: Path, resume: bool) -> Path:
    """Create the run directory ``out/<name>`` (or check it for a resume) and write the resolved config."""
    run_dir = out / config.name
    config_file = run_dir / CONFIG_FILE
    if resume and not config_file.is_file():
        raise InvalidOptionError(f"nothing to resume: {run_dir} holds no run; start it without --resume")
    if not resume and config_file.is_file():
        raise InvalidOptionError(
            f"a run named {config.name!r} exists in {run_dir}: continue it with --resume, or give another --name"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(config_document(config), sort_keys=False))
    return run_dir


def config_document(config: ExperimentConfig) -> dict[str, Any]:
    """The config as plain YAML-able data (objectives as text such as ``macs<=2e+07``)."""
    document = config.model_dump(mode="json")
    document["objectives"] = [
        {"name": o.name, "direction": o.direction.value, "bound": o.bound} for o in config.objectives
    ]
    return document


def run_search(
    config: ExperimentConfig,
    out: str | Path = "runs",
    *,
    resume: bool = False,
    progress: bool = True,
) -> Run:
    """Run (or resume) the search ``config`` describes, in ``out/<name>``; the finished run.

    A KeyboardInterrupt stops the search after saving its state; the results recorded so far stay in the store.
    """
    run_dir = prepare_run_dir(config, Path(out), resume)
    experiment = Experiment.wire(config, run_dir)
    store = ResultStore(config.storage.url or store_url(run_dir), config.name, experiment.space, experiment.objectives)
    store.study.set_user_attr("config", config_document(config))
    execution = config.execution
    runner = create_runner(
        execution.address,
        execution.workers,
        batch_size=execution.batch_size,
        resources=execution.resources,
        scheduler=execution.scheduler,
        workdir=run_dir / "tune",
    )
    with SearchProgress(experiment.objectives, config.budget.evaluations, enabled=progress) as bar:
        search = Search(
            experiment.strategy(),
            store,
            run_dir / STATE_FILE,
            evaluations=config.budget.evaluations,
            wall_time_s=config.budget.wall_time_s,
            progress=bar,
            save_every_result=experiment.evaluator.expensive,
        )
        try:
            runner.run(search, experiment.spec, experiment.evaluator)
        finally:
            search.close()
    return Run(store, config, run_dir)
