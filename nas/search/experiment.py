"""From an experiment config to a finished search: wiring the parts, the search loop, resuming exactly.

`run_search` is what ``nas search`` calls. It checks everything first (the config, the space and the evaluator,
the objectives against what the evaluator produces, the run directory) and writes nothing before; then it takes the
run's lease (one writer per run), opens the store and lets a runner (local Ray by default) evaluate what the strategy
proposes until the budget is spent. The store is the only record: a stopped or killed run, resumed, replays its
stored results into a new strategy of the same seed and continues exactly where it was (see `Search`).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from nas.core.capabilities import KnowsCosts, Prepares, TabularLookup
from nas.core.context import create_context, fitted_space_options
from nas.core.errors import InvalidArchitectureError, InvalidOptionError, StoreError
from nas.core.evaluation import (
    EVALUATORS,
    DataSpec,
    EvalResult,
    Evaluator,
    EvaluatorContext,
    Objective,
    resolve_objectives,
)
from nas.core.space import SPACES, Architecture, NetworkSpace, SearchSpace
from nas.search.config import ExperimentConfig
from nas.search.lease import RunLease
from nas.search.progress import SearchProgress
from nas.search.run import CONFIG_FILE, Run, store_url
from nas.search.runners import EvaluatorSpec, create_runner
from nas.search.store import Record, ResultStore, SearchStep
from nas.search.strategies import Constrained, Deduplicated, Strategy, create_strategy

#: Where an evaluator prepares its shared state (a trained supernet, for instance) in a run directory.
PREPARE_DIR = "prepare"


@dataclass
class Experiment:
    """A config's parts, built: the space, the evaluator, and the spec workers rebuild the evaluator from."""

    config: ExperimentConfig
    space: SearchSpace
    spec: EvaluatorSpec
    evaluator: Evaluator

    @classmethod
    def wire(cls, config: ExperimentConfig, run_dir: Path) -> Experiment:
        """Build the space and the evaluator of ``config`` for a run in ``run_dir`` (nothing is written), check the
        objectives against the figures the evaluator declares, and give those without a direction the declared one.
        The experiment's config is ``config`` with the space's task (`with_task`) and the resolved directions.

        Raises:
            InvalidOptionError: an objective the evaluator does not produce (the message lists what it does).
        """
        config = with_task(config)
        spec = EvaluatorSpec(config.evaluator.name, evaluator_context(config, run_dir), config.evaluator.options)
        evaluator = spec.create()
        space = spec.context.space
        objectives = resolve_objectives(config.objectives, evaluator.figures(), f"evaluator {config.evaluator.name!r}")
        update: dict[str, Any] = {"objectives": list(objectives)}
        if "top" not in config.export.model_fields_set:
            update["export"] = config.export.model_copy(update={"top": default_exports(config)[0]})
        elif config.export.top and not isinstance(space, NetworkSpace):
            raise InvalidOptionError(
                f"export.top: space {space.name!r} builds no networks, so none can be exported; set export: {{top: 0}}"
            )
        return cls(config.model_copy(update=update), space, spec, evaluator)

    def prepare(self, workdir: Path) -> None:
        """Let an evaluator that `Prepares` build its shared state (a trained supernet, ...) under ``workdir``;
        workers then load its checkpoint (their context's)."""
        if isinstance(self.evaluator, Prepares):
            checkpoint = self.evaluator.prepare(workdir)
            context = dataclasses.replace(self.spec.context, checkpoint=checkpoint)
            self.spec = dataclasses.replace(self.spec, context=context)

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return tuple(self.config.objectives)

    def strategy(self) -> Strategy:
        """The config's strategy, deduplicating by its ``dedup`` key, and screening proposals whose known costs break
        a bound; it knows the evaluator's known costs when the evaluator `KnowsCosts`."""
        known = self.evaluator.known_costs if isinstance(self.evaluator, KnowsCosts) else None
        inner = create_strategy(
            self.config.strategy.name,
            self.space,
            self.objectives,
            self.config.seed,
            known_costs=known,
            **self.config.strategy.options,
        )
        strategy: Strategy = Deduplicated(inner, key=self.config.strategy.dedup)
        counted = (
            set(self.space.cost(self.space.sample(0)).to_dict()) if isinstance(self.space, NetworkSpace) else set()
        )
        bounded = [o for o in self.objectives if o.bound is not None and o.name in counted]
        return Constrained(strategy, bounded) if bounded else strategy


def default_exports(config: ExperimentConfig) -> tuple[int, str]:
    """How many architectures of the front a search exports when ``export.top`` is not given: 1; none, with the
    reason, for a space that builds no networks, or an evaluator that looks results up in a table (they have no
    weights, and training one needs the task's data)."""
    if not issubclass(SPACES.get(config.space.name), NetworkSpace):
        return 0, f"space {config.space.name!r} builds no networks"
    if issubclass(EVALUATORS.get(config.evaluator.name), TabularLookup):
        return 0, (
            f"the {config.evaluator.name} evaluator looked the results up, so they have no weights; export with "
            "`nas export RUN --best` (trained on the config's dataset) or with --untrained"
        )
    return 1, ""


def data_spec(config: ExperimentConfig) -> DataSpec:
    """The data ``config`` names."""
    return DataSpec(config.dataset.name, config.dataset.data_dir, config.dataset.options)


def with_task(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` whose space options give the task of the data the evaluator reads, where they did not (for a space
    of networks, see `fitted_space_options`): the run's config then creates the same space without the data.

    Raises:
        InvalidOptionError, MissingDataError: the data cannot be read.
    """
    space = config.space
    options = fitted_space_options(
        space.name, config.evaluator.name, data_spec(config), space.options, config.evaluator.options
    )
    return config.model_copy(update={"space": space.model_copy(update={"options": options})})


def evaluator_context(config: ExperimentConfig, run_dir: Path | None) -> EvaluatorContext:
    """What ``config`` hands its evaluator: the space (fitted to the data's task where its options do not give it),
    the dataset, the seed, threads per worker (``execution.resources.cpu``) and the run's folder."""
    return create_context(
        config.evaluator.name,
        config.space.name,
        data_spec(config),
        space_options=config.space.options,
        evaluator_options=config.evaluator.options,
        seed=config.seed,
        threads=max(1, int(config.execution.resources.get("cpu", 1))),
        run_dir=run_dir,
    )


class StopReason(StrEnum):
    """Why a search stopped proposing."""

    BUDGET = "budget reached"
    WALL_TIME = "wall time reached"
    EXHAUSTED = "the strategy has nothing more to propose"
    TAKEN_OVER = "another search took the run over"


@dataclass
class _Tell:
    """One tell of the strategy: the ``arch_id`` of its results in order, and those stored so far."""

    batch: list[str]
    results: dict[str, EvalResult] = field(default_factory=dict)


class Search:
    """The loop a runner drives: proposes what the strategy asks for, within the budget; records results in the store
    and tells the strategy.

    The store is the only record. Each stored result carries its `SearchStep` (the asks before it, the tell it belongs
    to), so a resumed search rebuilds the strategy by replaying those calls on a new one of the same seed: it then
    proposes exactly what the uninterrupted search would have. What was proposed but not stored when the run stopped
    (the rest of a tell cut short, proposals in flight), and failures that were not the architecture's fault (once),
    are evaluated first.

    Raises:
        InvalidOptionError: on resume, the stored results do not replay with this strategy (another seed, strategy
            or options than the run's), or were written without search steps.
        StoreError: a stored architecture is damaged or not of the space.
    """

    def __init__(
        self,
        strategy: Strategy,
        store: ResultStore,
        *,
        evaluations: int | None,
        wall_time_s: float | None,
        progress: SearchProgress,
        lease: RunLease | None = None,
    ) -> None:
        self.strategy, self.store, self.progress, self.lease = strategy, store, progress, lease
        self.evaluations, self.wall_time_s = evaluations, wall_time_s
        self.stored: dict[str, EvalResult] = {}  # the latest result of each architecture
        self.in_flight: dict[str, Architecture] = {}  # proposed, not stored yet
        self.queue: list[Architecture] = []  # evaluated before anything new is asked
        self.stop_reason: StopReason | None = None
        self.elapsed_before = 0.0
        self.started = time.monotonic()
        self._tells: dict[int, _Tell] = {}  # tells not complete yet
        self._tell_of: dict[str, int] = {}  # arch_id -> its incomplete tell
        self._next_tell = 0
        self._asks: list[int] = []  # ask sizes not yet written beside a result
        self._attempts: Counter[str] = Counter()
        self._replay(store.records())
        self.resumed_with = len(self.stored)

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
        flying = sum(arch_id not in self.stored for arch_id in self.in_flight)  # a retry is stored already
        return max(0, self.evaluations - len(self.stored) - flying)

    def propose(self, n: int) -> list[Architecture]:
        if self.stop_reason is StopReason.TAKEN_OVER:
            return []
        if self.wall_time_s is not None and self.elapsed >= self.wall_time_s:
            self.stop_reason = StopReason.WALL_TIME
            return []
        if self.queue:
            archs, self.queue = self.queue[:n], self.queue[n:]
            return archs
        remaining = self.remaining()
        if remaining == 0:
            self.stop_reason = StopReason.BUDGET
            return []
        size = n if remaining is None else min(n, remaining)
        archs = self._ask(size)
        self._asks.append(size)
        if not archs:
            self.stop_reason = StopReason.EXHAUSTED
        return archs

    def record(self, results: Sequence[EvalResult]) -> None:
        """Store the results of architectures in flight, then tell the strategy each tell they complete."""
        if self.lease is not None and self.lease.lost:
            self.stop_reason = StopReason.TAKEN_OVER
            return
        results = list({r.arch_id: r for r in results if r.arch_id in self.in_flight}.values())
        if not results:
            return
        fresh = [r.arch_id for r in results if r.arch_id not in self._tell_of]
        if fresh:
            self._open(self._next_tell, fresh)
        steps = [
            SearchStep(
                self._tell_of[r.arch_id],
                asks=tuple(self._asks) if i == 0 else (),
                batch=tuple(fresh) if fresh and r.arch_id == fresh[0] else (),
                elapsed_s=self.elapsed,
            )
            for i, r in enumerate(results)
        ]
        stored = self.store.add(results, steps)
        self._asks = []
        for result, step in zip(stored, steps, strict=True):
            self._collect(result, step.tell)
        self.progress.update(stored)

    def outcome(self) -> str:
        """Why the search stopped, in words, saying so when a resumed run had nothing left to do."""
        reason = self.stop_reason.value if self.stop_reason else "stopped"
        if self.stop_reason is StopReason.BUDGET:
            reason += f" ({len(self.stored)} of {self.evaluations} evaluations)"
        elif self.stop_reason is StopReason.WALL_TIME:
            reason += f" ({self.elapsed:.0f} s of {self.wall_time_s:g} s)"
        if self.resumed_with and len(self.stored) == self.resumed_with and self.stop_reason is not StopReason.EXHAUSTED:
            reason += "; the run was complete already: continue it with a larger --max-evals or --wall-time"
        return reason

    def _ask(self, n: int) -> list[Architecture]:
        """The strategy's proposals that are neither stored nor in flight (a deduplicating strategy has none such)."""
        archs = [a for a in self.strategy.ask(n) if a.arch_id not in self.stored and a.arch_id not in self.in_flight]
        self.in_flight.update((a.arch_id, a) for a in archs)
        return archs

    def _open(self, number: int, batch: list[str]) -> None:
        self._tells[number] = _Tell(batch)
        self._tell_of.update(dict.fromkeys(batch, number))
        self._next_tell = max(self._next_tell, number + 1)

    def _collect(self, result: EvalResult, number: int) -> None:
        """Count a stored result; tell the strategy its tell once every result of that tell is stored."""
        tell = self._tells[number]
        tell.results[result.arch_id] = result
        self.stored[result.arch_id] = result
        self.in_flight.pop(result.arch_id, None)
        self._tell_of.pop(result.arch_id, None)
        self._attempts[result.arch_id] += 1
        if len(tell.results) == len(tell.batch):
            del self._tells[number]
            self.strategy.tell([tell.results[arch_id] for arch_id in tell.batch])

    def _retry(self, arch_id: str) -> bool:
        """Whether ``arch_id`` failed through no fault of its own, and has not been evaluated again yet."""
        latest = self.stored.get(arch_id)
        return latest is not None and latest.retryable and self._attempts[arch_id] == 1

    def _replay(self, records: Sequence[Record]) -> None:
        """Rebuild the strategy from the stored results, then queue what the run left unfinished."""
        for record in records:
            step, result = record.step, record.result
            if step is None:
                raise InvalidOptionError(
                    f"run {self.store.name!r} was stored without its search steps (by an earlier version of nas), so "
                    "it cannot be resumed exactly: start a new run"
                )
            self._check_space(record)
            for n in step.asks:
                self._ask(n)
            if step.batch:
                self._open(step.tell, list(step.batch))
            if result.arch_id not in self.in_flight and not self._retry(result.arch_id):
                raise InvalidOptionError(
                    f"run {self.store.name!r} does not replay: its trial {record.number} holds {result.arch_id}, "
                    "which this strategy does not propose there; resume with the seed, strategy and options the run "
                    "started with"
                )
            if step.tell not in self._tells:
                raise StoreError(f"trial {record.number} of run {self.store.name!r} belongs to no recorded tell")
            self._collect(result, step.tell)
            self.elapsed_before = step.elapsed_s
        unfinished = [self.in_flight[a] for tell in self._tells.values() for a in tell.batch if a in self.in_flight]
        asked = [a for a in self.in_flight.values() if a.arch_id not in self._tell_of]
        retries = [r.arch for r in self.stored.values() if self._retry(r.arch_id)]
        self.in_flight.update((a.arch_id, a) for a in retries)
        self.queue = [*unfinished, *asked, *retries]
        self.progress.update(list(self.stored.values()))

    def _check_space(self, record: Record) -> None:
        try:
            self.strategy.space.validate(record.result.arch)
        except InvalidArchitectureError as error:
            raise StoreError(
                f"trial {record.number} of run {self.store.name!r} holds no architecture of space "
                f"{self.strategy.space.name!r}: {error}"
            ) from None


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to start a run that exists, or to resume one that does not (nothing is written)."""
    exists = (run_dir / CONFIG_FILE).is_file()
    if resume and not exists:
        raise InvalidOptionError(f"nothing to resume: {run_dir} holds no run; start it without --resume")
    if not resume and exists:
        raise InvalidOptionError(
            f"a run named {run_dir.name!r} exists in {run_dir}: continue it with --resume, or give another --name"
        )


def config_document(config: ExperimentConfig) -> dict[str, Any]:
    """The config as plain YAML-able data (objectives as ``{name, direction, bound}``; a wired config's directions
    are resolved)."""
    document = config.model_dump(mode="json")
    document["objectives"] = [
        {"name": o.name, **({"direction": o.direction.value} if o.direction else {}), "bound": o.bound}
        for o in config.objectives
    ]
    return document


def absolute_paths(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with its dataset's paths (``data_dir``, a dataset given as a file or folder) and the evaluator's
    `Evaluator.path_options` (a table's file) made absolute here: Ray runs each training in a working directory of its
    own, where a relative path means something else."""
    dataset = config.dataset
    name = str(Path(dataset.name).expanduser().resolve()) if Path(dataset.name).expanduser().exists() else dataset.name
    data_dir = None if dataset.data_dir is None else str(Path(dataset.data_dir).expanduser().resolve())
    options = dict(config.evaluator.options)
    for key in EVALUATORS.get(config.evaluator.name).path_options:
        if isinstance(options.get(key), str):
            options[key] = str(Path(options[key]).expanduser().resolve())
    return config.model_copy(
        update={
            "dataset": dataset.model_copy(update={"name": name, "data_dir": data_dir}),
            "evaluator": config.evaluator.model_copy(update={"options": options}),
        }
    )


def run_search(
    config: ExperimentConfig,
    out: str | Path = "runs",
    *,
    resume: bool = False,
    progress: bool = True,
    finish: Callable[[Run], None] | None = None,
) -> Run:
    """Run (or resume) the search ``config`` describes, in ``out/<name>``; the finished run (`Run.stop_reason` says
    why it stopped).

    Everything is checked before the run directory is created or the store written. The search holds the run's
    lease from start to end (on a resume, before anything else: a second search of the run is refused at once);
    ``finish`` is called with the finished run while it is still held, to write the report and exports, say. A
    KeyboardInterrupt stops the search; the results recorded so far stay in the store.

    Raises:
        RunLockedError: another search is writing this run.
    """
    run_dir = Path(out).expanduser().resolve() / config.name
    config = absolute_paths(config)
    check_run_dir(run_dir, resume)
    url = config.storage.url or store_url(run_dir)
    lease = RunLease(url, config.name)
    if resume:  # the run and its store exist
        lease.acquire()
    try:
        experiment = Experiment.wire(config, run_dir)
        config = experiment.config  # with the space's task and the objectives' directions resolved
        execution = config.execution
        runner = create_runner(
            execution.address,
            execution.workers,
            batch_size=execution.batch_size,
            resources=execution.resources,
            scheduler=execution.scheduler,
            workdir=run_dir / "tune",
            plugins=config.plugins,
        )
        runner.check()
        if not resume:  # everything is checked: the run can be created
            run_dir.mkdir(parents=True, exist_ok=True)
            lease.acquire()
        figures = experiment.evaluator.figures()
        store = ResultStore.create(url, config.name, experiment.space, experiment.objectives, figures)
        with SearchProgress(experiment.objectives, config.budget.evaluations, enabled=progress) as bar:
            search = Search(
                experiment.strategy(),
                store,
                evaluations=config.budget.evaluations,
                wall_time_s=config.budget.wall_time_s,
                progress=bar,
                lease=lease,
            )
            (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(config_document(config), sort_keys=False))
            store.study.set_user_attr("config", config_document(config))
            experiment.prepare(run_dir / PREPARE_DIR)
            runner.run(search, experiment.spec, experiment.evaluator)
        lease.check()  # raises if another search took the run over meanwhile
        run = Run(store, config, run_dir, stop_reason=search.outcome())
        if finish is not None:
            finish(run)
        return run
    finally:
        lease.release()
