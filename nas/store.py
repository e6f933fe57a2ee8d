"""The result store: every evaluated architecture of a run, in Optuna's storage (contract).

One run is one Optuna study (SQLite file by default, PostgreSQL URL on a cluster), so ``optuna-dashboard URL`` opens
it. Each evaluated architecture is a trial: its values are the objectives (a failed evaluation is a failed trial);
its user attributes hold ``arch_id``, ``arch`` (the architecture's dict), each cost (``macs``, ``params``,
``latency_ms:<device>``; also together as ``costs``), the ``metrics`` and the provenance. The study's user
attributes hold what a resumed run must agree with: the space's name and version and the objectives.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import optuna
import pandas as pd

from nas.errors import InvalidOptionError, MissingDataError
from nas.evaluation import Direction, EvalResult, Objective, Provenance, Status
from nas.space import Architecture, SearchSpace

_OPTUNA_DIRECTION = {
    Direction.MAX: optuna.study.StudyDirection.MAXIMIZE,
    Direction.MIN: optuna.study.StudyDirection.MINIMIZE,
}


class ResultStore:
    """Opens (or creates) the study ``name`` in the storage at ``url`` for a search of ``space`` on ``objectives``.

    Reopening a run checks that the space (name and version) and the objectives are the ones it was created with:
    results measured against other objectives, or on another version of a space, cannot be mixed into it.

    Example:
        >>> store = ResultStore("sqlite:///runs/demo/store.db", "demo", space, objectives)  # doctest: +SKIP
        >>> store.add(results)  # doctest: +SKIP
        >>> store.to_dataframe()[["arch_id", "accuracy", "macs"]]  # doctest: +SKIP
    """

    def __init__(self, url: str, name: str, space: SearchSpace, objectives: Sequence[Objective]) -> None:
        self.objectives = tuple(objectives)
        if not self.objectives:
            raise InvalidOptionError("a result store needs at least one objective")
        identity = {
            "space": space.name,
            "space_version": space.version,
            "objectives": [[o.name, o.direction.value, o.bound] for o in self.objectives],
        }
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(
            storage=url,
            study_name=name,
            directions=[_OPTUNA_DIRECTION[o.direction] for o in self.objectives],
            load_if_exists=True,
        )
        stored = {key: self.study.user_attrs.get(key) for key in identity}
        if all(value is None for value in stored.values()):
            for key, value in identity.items():
                self.study.set_user_attr(key, value)
            with warnings.catch_warnings():  # experimental since Optuna 3.2, and what optuna-dashboard shows
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.set_metric_names([o.name for o in self.objectives])
        elif stored != identity:
            changed = [key for key in identity if stored[key] != identity[key]]
            raise InvalidOptionError(
                f"run {name!r} in {url} was created with "
                + ", ".join(f"{key}={stored[key]!r}" for key in changed)
                + "; this search has "
                + ", ".join(f"{key}={identity[key]!r}" for key in changed)
                + ": start a new run (another name) instead of resuming this one"
            )

    @classmethod
    def open(cls, url: str, name: str | None = None) -> ResultStore:
        """Open an existing run for reading, with the objectives it was created with; ``name`` may be left out when
        the storage holds one run only.

        Raises:
            MissingDataError: no such run (the message lists the runs the storage holds).
        """
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            names = [s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False)]
        except Exception as error:  # SQLAlchemy raises many types for a bad URL or an unreachable server
            raise MissingDataError(f"cannot open the result storage {url}: {error}") from error
        if name is None and len(names) == 1:
            name = names[0]
        if name not in names:
            held = ", ".join(names) or "none"
            raise MissingDataError(
                f"no run {name!r} in {url}; it holds: {held}" if name else f"{url} holds runs {held}: name one"
            )
        store = cls.__new__(cls)
        store.study = optuna.load_study(study_name=name, storage=url)
        attrs = store.study.user_attrs
        if "objectives" not in attrs:
            raise MissingDataError(f"study {name!r} in {url} was not written by a search (it has no objectives)")
        store.objectives = tuple(Objective(n, d, b) for n, d, b in attrs["objectives"])
        return store

    @property
    def name(self) -> str:
        """The run's name (its study's)."""
        return self.study.study_name

    @property
    def space_name(self) -> str:
        """The name of the space the run searched."""
        return str(self.study.user_attrs["space"])

    def add(self, results: Sequence[EvalResult]) -> None:
        """Record evaluated architectures; one whose objectives are not all finite numbers is a failed trial."""
        for result in results:
            values = [result.value(o.name) for o in self.objectives]
            reason = result.reason
            if result.ok and not all(math.isfinite(v) for v in values):
                missing = [o.name for o, v in zip(self.objectives, values, strict=True) if not math.isfinite(v)]
                reason = f"the evaluation gave no finite value for {', '.join(missing)}"
            failed = not result.ok or bool(reason)
            attrs = {
                "arch_id": result.arch_id,
                "arch": result.arch.to_dict(),
                "metrics": dict(result.metrics),
                "costs": dict(result.costs),
                "provenance": result.provenance.to_dict(),
                "reason": reason,
                **result.costs,  # and one attribute per cost, which the dashboard lists
            }
            trial = optuna.trial.create_trial(
                state=optuna.trial.TrialState.FAIL if failed else optuna.trial.TrialState.COMPLETE,
                values=None if failed else values,
                user_attrs=attrs,
            )
            self.study.add_trial(trial)

    def results(self) -> list[EvalResult]:
        """Every recorded evaluation, in the order it was added."""
        return [_result(t.user_attrs, t.state) for t in self._trials()]

    def evaluated_ids(self) -> set[str]:
        """The ``arch_id`` of every recorded architecture, failed ones included."""
        return {t.user_attrs["arch_id"] for t in self._trials()}

    def to_dataframe(self) -> pd.DataFrame:
        """One row per evaluation: ``arch_id``, ``arch``, each metric and cost, ``status``, ``reason``, ``evaluator``,
        ``wall_time_s``."""
        rows = [
            {
                "arch_id": r.arch_id,
                "arch": r.arch.to_dict(),
                **r.metrics,
                **r.costs,
                "status": r.status.value,
                "reason": r.reason,
                "evaluator": r.provenance.evaluator,
                "wall_time_s": r.provenance.wall_time_s,
            }
            for r in self.results()
        ]
        return pd.DataFrame(rows)

    def _trials(self) -> list[optuna.trial.FrozenTrial]:
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
        return [t for t in self.study.get_trials(deepcopy=False, states=states) if "arch_id" in t.user_attrs]


def _result(attrs: dict[str, Any], state: optuna.trial.TrialState) -> EvalResult:
    ok = state == optuna.trial.TrialState.COMPLETE
    return EvalResult(
        Architecture.from_dict(attrs["arch"]),
        attrs["metrics"],
        attrs["costs"],
        Provenance(**attrs["provenance"]),
        Status.OK if ok else Status.FAILED,
        attrs["reason"],
    )
