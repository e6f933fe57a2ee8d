"""The result store: every evaluated architecture of a run, in Optuna's storage (contract).

One run is one Optuna study (SQLite file by default, PostgreSQL URL on a cluster), so ``optuna-dashboard URL`` opens
it. Each evaluation is a trial: its values are the objectives; its state says how it ended (COMPLETE, FAIL, or
PRUNED when a multi-fidelity scheduler stopped it early, with the figures of the fidelity it reached). Its user
attributes hold ``arch_id``, ``arch`` (the architecture's dict), each cost (``macs``, ``params``,
``latency_ms:<device>``; also together as ``costs``), the ``metrics``, the provenance (evaluator, fidelity, seed,
wall time), the reason of a failure, and ``search``: where the result sits in the search's history, which a resumed
search replays (`SearchStep`). The study's user attributes hold what a resumed run must agree with: the space's name
and version and the objectives; and ``figures``, what the evaluator declared it produces (name, direction, unit), so
that a run's units are known without creating its evaluator.

A store is opened for writing by `ResultStore.create` (the search holds the run's lease, `nas.lease`) and for
reading by `ResultStore.open`, which never writes: it refuses a missing or empty store instead of creating one.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import sqlalchemy.exc

from nas.core.errors import InvalidOptionError, MissingDataError, StoreError
from nas.core.evaluation import Direction, EvalResult, Figure, Objective, Provenance, Status, Unit
from nas.core.space import Architecture, SearchSpace

_OPTUNA_DIRECTION = {
    Direction.MAX: optuna.study.StudyDirection.MAXIMIZE,
    Direction.MIN: optuna.study.StudyDirection.MINIMIZE,
}
_STATE = {
    Status.OK: optuna.trial.TrialState.COMPLETE,
    Status.FAILED: optuna.trial.TrialState.FAIL,
    Status.PRUNED: optuna.trial.TrialState.PRUNED,
}
_STATUS = {state: status for status, state in _STATE.items()}
SQLITE_PREFIX = "sqlite:///"
#: The columns of `ResultStore.to_dataframe` besides the metrics and costs.
FRAME_COLUMNS = ("arch_id", "arch", "status", "fidelity", "reason", "evaluator", "wall_time_s")


@dataclass(frozen=True)
class SearchStep:
    """Where a stored result sits in the history of the search that recorded it, so that a resumed search can replay
    the strategy's calls exactly: the tell it belongs to (numbered from 0), and, on the first result of a store
    write, the sizes of the strategy's asks since the previous write, and on the first result of a tell, the
    ``arch_id`` of every result of that tell, in order (a tell cut short by a kill is completed on resume)."""

    tell: int
    asks: tuple[int, ...] = ()
    batch: tuple[str, ...] = ()
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tell": self.tell, "elapsed_s": self.elapsed_s}
        if self.asks:
            data["asks"] = list(self.asks)
        if self.batch:
            data["batch"] = list(self.batch)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchStep:
        return cls(int(data["tell"]), tuple(data.get("asks", ())), tuple(data.get("batch", ())), data["elapsed_s"])


@dataclass(frozen=True)
class Record:
    """One stored evaluation: its trial number, its result, and its place in the search (None when it was added
    outside a search)."""

    number: int
    result: EvalResult
    step: SearchStep | None


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn the database's errors (unreachable, locked, malformed) into a `StoreError` naming the storage."""
    try:
        yield
    except ImportError as error:  # the URL's database driver
        raise StoreError(f"the result store {url} needs {error.name or error}, which is not installed") from None
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
        cause: BaseException = error
        while cause.__cause__ is not None:  # Optuna wraps the database's error in one of its own
            cause = cause.__cause__
        detail = str(getattr(cause, "orig", None) or cause).splitlines()[0]
        hint = " (another process holds a write lock on it; wait for it or stop it)" if "locked" in detail else ""
        raise StoreError(f"the result store {url} cannot be used: {detail}{hint}") from None


class ResultStore:
    """The results of one run: an Optuna study and the run's objectives. Create one with `create` (writing) or
    `open` (reading).

    Example:
        >>> store = ResultStore.create("sqlite:///runs/demo/store.db", "demo", space, objectives)  # doctest: +SKIP
        >>> store.add(results)  # doctest: +SKIP
        >>> store.to_dataframe()[["arch_id", "accuracy", "macs"]]  # doctest: +SKIP
    """

    def __init__(self, study: optuna.Study, objectives: Sequence[Objective], url: str) -> None:
        self.study, self.objectives, self.url = study, tuple(objectives), url

    @classmethod
    def create(
        cls,
        url: str,
        name: str,
        space: SearchSpace,
        objectives: Sequence[Objective],
        figures: Sequence[Figure] = (),
    ) -> ResultStore:
        """Open the run ``name`` in the storage at ``url`` for writing, creating it if it does not exist; a new run
        records ``figures``, what its evaluator declares.

        Reopening a run checks that the space (name and version) and the objectives are the ones it was created
        with: results measured against other objectives, or on another version of a space, cannot be mixed into it.
        """
        if not objectives:
            raise InvalidOptionError("a result store needs at least one objective")
        identity = {
            "space": space.name,
            "space_version": space.version,
            "objectives": [[o.name, o.resolved.value, o.bound] for o in objectives],
        }
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with storage_errors(url):
            study = optuna.create_study(
                storage=url,
                study_name=name,
                directions=[_OPTUNA_DIRECTION[o.resolved] for o in objectives],
                load_if_exists=True,
            )
            stored = {key: study.user_attrs.get(key) for key in identity}
            if all(value is None for value in stored.values()):
                for key, value in identity.items():
                    study.set_user_attr(key, value)
                study.set_user_attr("figures", [[f.name, f.direction.value, f.unit.value] for f in figures])
                with warnings.catch_warnings():  # experimental since Optuna 3.2, and what optuna-dashboard shows
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.set_metric_names([o.name for o in objectives])
        if any(value is not None for value in stored.values()) and stored != identity:
            changed = [key for key in identity if stored[key] != identity[key]]
            raise InvalidOptionError(
                f"run {name!r} in {url} was created with "
                + ", ".join(f"{key}={stored[key]!r}" for key in changed)
                + "; this search has "
                + ", ".join(f"{key}={identity[key]!r}" for key in changed)
                + ": start a new run (another name) instead of resuming this one"
            )
        return cls(study, objectives, url)

    @classmethod
    def open(cls, url: str, name: str | None = None) -> ResultStore:
        """Open an existing run for reading, with the objectives it was created with; ``name`` may be left out when
        the storage holds one run only. Nothing is written: a missing or empty store is refused, not created.

        Raises:
            MissingDataError: no store there, or no such run in it (the message lists the runs the storage holds).
        """
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = read_only_storage(url)
        with storage_errors(url):
            names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
            if name is None and len(names) == 1:
                name = names[0]
            if name not in names:
                held = ", ".join(names) or "none"
                raise MissingDataError(
                    f"no run {name!r} in {url}; it holds: {held}" if name else f"{url} holds runs {held}: name one"
                )
            study = optuna.load_study(study_name=name, storage=storage)
            attrs = study.user_attrs
        if "objectives" not in attrs:
            raise MissingDataError(f"study {name!r} in {url} was not written by a search (it has no objectives)")
        return cls(study, [Objective(n, d, b) for n, d, b in attrs["objectives"]], url)

    @property
    def name(self) -> str:
        """The run's name (its study's)."""
        return self.study.study_name

    @property
    def figures(self) -> tuple[Figure, ...]:
        """What the run's evaluator declared it produces (none for a run stored before figures were declared)."""
        try:
            return tuple(Figure(n, Direction(d), Unit(u)) for n, d, u in self.study.user_attrs.get("figures", ()))
        except (TypeError, ValueError) as error:
            raise StoreError(f"run {self.name!r} in {self.url} holds damaged figures ({error})") from None

    @property
    def space_name(self) -> str:
        """The name of the space the run searched."""
        return str(self.study.user_attrs["space"])

    def stored_form(self, result: EvalResult) -> EvalResult:
        """``result`` as the store records it: an OK result without a finite value for every objective is a
        failure saying which are missing."""
        values = [result.value(o.name) for o in self.objectives]
        if not result.ok or all(math.isfinite(v) for v in values):
            return result
        missing = [o.name for o, v in zip(self.objectives, values, strict=True) if not math.isfinite(v)]
        return EvalResult.failed(
            result.arch, f"the evaluation gave no finite value for {', '.join(missing)}", result.provenance
        )

    def add(self, results: Sequence[EvalResult], steps: Sequence[SearchStep] | None = None) -> list[EvalResult]:
        """Record evaluated architectures (each at its `SearchStep` of a search, if given); what was recorded, in
        `stored_form`."""
        stored = [self.stored_form(r) for r in results]
        with storage_errors(self.url):
            for i, result in enumerate(stored):
                attrs = {
                    "arch_id": result.arch_id,
                    "arch": result.arch.to_dict(),
                    "metrics": dict(result.metrics),
                    "costs": dict(result.costs),
                    "provenance": result.provenance.to_dict(),
                    "reason": result.reason,
                    **result.costs,  # and one attribute per cost, which the dashboard lists
                }
                if result.retryable:
                    attrs["retryable"] = True
                if steps is not None:
                    attrs["search"] = steps[i].to_dict()
                values = [result.value(o.name) for o in self.objectives]
                measured = result.measured and all(math.isfinite(v) for v in values)
                trial = optuna.trial.create_trial(
                    state=_STATE[result.status], values=values if measured else None, user_attrs=attrs
                )
                self.study.add_trial(trial)
        return stored

    def records(self) -> list[Record]:
        """Every stored evaluation, in the order it was added (a retried failure and its retry both).

        Raises:
            StoreError: a trial does not hold what a search writes (a damaged or tampered store).
        """
        return [self._record(t) for t in self._trials()]

    def results(self) -> list[EvalResult]:
        """One result per evaluated architecture, the latest when it was evaluated again (a retried failure), in
        the order of those latest records."""
        latest: dict[str, EvalResult] = {}
        for record in self.records():
            latest.pop(record.result.arch_id, None)
            latest[record.result.arch_id] = record.result
        return list(latest.values())

    def to_dataframe(self) -> pd.DataFrame:
        """One row per architecture (see `results`): ``arch_id``, ``arch``, each metric and cost, ``status``,
        ``fidelity`` (the provenance's, e.g. ``{"epochs": 2}``), ``reason``, ``evaluator``, ``wall_time_s``."""
        rows = [
            {
                "arch_id": r.arch_id,
                "arch": r.arch.to_dict(),
                **r.metrics,
                **r.costs,
                "status": r.status.value,
                "fidelity": dict(r.provenance.fidelity),
                "reason": r.reason,
                "evaluator": r.provenance.evaluator,
                "wall_time_s": r.provenance.wall_time_s,
            }
            for r in self.results()
        ]
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=FRAME_COLUMNS)

    def _record(self, trial: optuna.trial.FrozenTrial) -> Record:
        attrs = trial.user_attrs
        try:
            result = EvalResult(
                Architecture.from_dict(attrs["arch"]),
                attrs["metrics"],
                attrs["costs"],
                Provenance(**attrs["provenance"]),
                _STATUS[trial.state],
                str(attrs["reason"]),
                bool(attrs.get("retryable", False)),
            )
            step = SearchStep.from_dict(attrs["search"]) if "search" in attrs else None
        except (KeyError, TypeError, ValueError) as error:  # InvalidArchitectureError is a ValueError
            raise StoreError(
                f"trial {trial.number} of run {self.name!r} in {self.url} is damaged ({type(error).__name__}: "
                f"{error}); it does not hold what a search writes"
            ) from None
        return Record(trial.number, result, step)

    def _trials(self) -> list[optuna.trial.FrozenTrial]:
        with storage_errors(self.url):
            trials = self.study.get_trials(deepcopy=False, states=tuple(_STATUS))
        return [t for t in trials if "arch_id" in t.user_attrs]


def read_only_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage at ``url``, opened so that nothing can be written (a SQLite file read-only, a PostgreSQL
    session in read-only transactions) and no schema is created.

    Raises:
        MissingDataError: a SQLite store file that does not exist or is empty.
    """
    engine: dict[str, Any] = {}
    if url.startswith(SQLITE_PREFIX):
        path = Path(url.removeprefix(SQLITE_PREFIX))
        if not path.is_file() or path.stat().st_size == 0:
            raise MissingDataError(f"no result store at {path}: the run has stored nothing (or the file was removed)")
        url = f"{SQLITE_PREFIX}file:{path}?mode=ro&uri=true"
    elif url.startswith("postgresql"):
        engine = {"connect_args": {"options": "-c default_transaction_read_only=on"}}
    with storage_errors(url):
        probe = sqlalchemy.create_engine(url, **engine)
        try:
            with probe.connect() as db:
                empty = not sqlalchemy.inspect(db).has_table("studies")
        finally:
            probe.dispose()
        if empty:
            raise MissingDataError(f"the storage {url} holds no runs: nothing has been stored there yet")
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, skip_table_creation=True)
