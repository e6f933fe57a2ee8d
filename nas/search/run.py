"""A finished or running search, read back: its results as a DataFrame, its Pareto front, queries over both.

A run directory (``runs/<name>/``) holds ``config.yaml`` (the resolved experiment config), ``store.db`` (the
result store, unless the config names an external storage URL) and, once written, ``report/`` and ``export/``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.core.errors import InvalidOptionError, MissingDataError
from nas.core.evaluation import Objective, Status, figure_keys
from nas.core.pareto import pareto_mask
from nas.search.config import NAMES_ONLY, ExperimentConfig, load_config
from nas.search.store import ResultStore

CONFIG_FILE = "config.yaml"
STORE_FILE = "store.db"

_CONDITION = re.compile(r"^\s*([A-Za-z_][\w:.\-]*?)\s*(<=|>=|==|!=|<|>)\s*(\S.*?)\s*$")
_COMPARE = {
    "<=": np.less_equal,
    ">=": np.greater_equal,
    "<": np.less,
    ">": np.greater,
    "==": np.equal,
    "!=": np.not_equal,
}


def store_url(run_dir: str | Path) -> str:
    """The SQLite URL of the store inside a run directory."""
    return f"sqlite:///{Path(run_dir).resolve() / STORE_FILE}"


@dataclass
class Run:
    """The results of one search. Load one with `load_run`.

    Example:
        >>> run = nas.load_run("runs/quickstart")  # doctest: +SKIP
        >>> run.pareto()[["arch_id", "accuracy", "macs"]]  # doctest: +SKIP
        >>> run.query(where=["macs<=20e6"], sort="accuracy", top=1)  # doctest: +SKIP
    """

    store: ResultStore
    config: ExperimentConfig | None = None
    path: Path | None = None
    #: Why the search that returned this run stopped (None for a run opened with `load_run`).
    stop_reason: str | None = None

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return self.store.objectives

    def to_dataframe(self) -> pd.DataFrame:
        """One row per architecture (see `ResultStore.to_dataframe`), with ``fidelity`` as text (``epochs=2
        fraction=1``), plus ``feasible`` (measured, and every bound met), ``top_fidelity`` (an OK result at the
        run's highest fidelity: what fronts are made of) and a column per objective under its own name
        (``latency:pixel3`` beside ``latency_ms:pixel3``)."""
        frame = self.store.to_dataframe()
        if frame.empty:
            return frame
        feasible = frame["status"] != Status.FAILED.value
        for objective in self.objectives:
            column = next((k for k in figure_keys(objective.name) if k in frame.columns), objective.name)
            if column not in frame.columns:  # no evaluation gave it (every one failed)
                frame[column] = math.nan
            if column != objective.name:
                frame[objective.name] = frame[column]
            if objective.bound is not None:
                feasible &= frame[column].map(lambda v, o=objective: not math.isnan(v) and o.feasible(v))
        frame["feasible"] = feasible
        ok = frame["status"] == Status.OK.value
        top = max(frame.loc[ok, "fidelity"], key=_fidelity_rank, default=None)
        frame["top_fidelity"] = ok & frame["fidelity"].map(lambda f: f == top)
        frame["fidelity"] = frame["fidelity"].map(fidelity_text)
        return frame

    def pareto(self) -> pd.DataFrame:
        """The feasible OK results at the run's highest fidelity that no other one dominates on the objectives,
        best first objective first."""
        return self.query(pareto=True)

    def query(
        self,
        where: Sequence[str] = (),
        *,
        pareto: bool = False,
        sort: str | None = None,
        top: int | None = None,
        status: str | None = None,
        all_fidelities: bool = False,
    ) -> pd.DataFrame:
        """The results that meet every condition of ``where`` (``macs<=20e6``, ``accuracy>=0.9``,
        ``latency_ms<2``) and have ``status`` (``ok``, ``failed``, ``pruned``; any by default), on the Pareto front
        of those if ``pareto``, sorted by ``sort`` (an objective sorts best first; ``-name`` sorts descending), the
        first ``top`` of them.

        A front holds the OK results at the run's highest fidelity only (architectures a multi-fidelity scheduler
        stopped early were measured at a lower one), unless ``all_fidelities``.

        Raises:
            InvalidOptionError: a condition is malformed or names no column (the message lists the columns).
        """
        if status is not None and status not in set(Status):
            raise InvalidOptionError(f"unknown status {status!r}; choose one of {', '.join(Status)}")
        frame = self.to_dataframe()
        if frame.empty:
            return frame
        for condition in where:
            frame = frame[_mask(frame, condition)]
        if status is not None:
            frame = frame[frame["status"] == status]
        if pareto:
            frame = frame[frame["feasible"] & (all_fidelities or frame["top_fidelity"])]
            if not frame.empty:
                values = frame[[o.name for o in self.objectives]].to_numpy(dtype=float)
                frame = frame[pareto_mask(values, [o.direction for o in self.objectives])]
            sort = sort or self.objectives[0].name
        if sort:
            frame = self._sorted(frame, sort)
        return frame.head(top) if top is not None else frame

    def _sorted(self, frame: pd.DataFrame, sort: str) -> pd.DataFrame:
        descending = sort.startswith("-")
        name = sort.lstrip("-")
        column = resolve_column(frame, name)
        if not descending:
            maximized = [o for o in self.objectives if o.name == name and o.sign() > 0]
            descending = bool(maximized)
        return frame.sort_values(column, ascending=not descending, kind="stable", na_position="last")


def fidelity_text(fidelity: Mapping[str, float]) -> str:
    """A fidelity as text: ``epochs=2 fraction=1``, or ``full`` for an evaluator without fidelities."""
    return " ".join(f"{k}={v:g}" for k, v in sorted(fidelity.items())) or "full"


def _fidelity_rank(fidelity: Mapping[str, float]) -> tuple[Any, ...]:
    """Orders fidelities: more of every resource is higher (compared by resource name, in order)."""
    return tuple(sorted(fidelity.items()))


def resolve_column(frame: pd.DataFrame, name: str) -> str:
    """The column ``name`` refers to: itself, ``latency_ms:X`` for ``latency:X``, or the one column ``name:X``."""
    for candidate in figure_keys(name):
        if candidate in frame.columns:
            return candidate
    prefixed = [c for c in frame.columns if str(c).startswith(f"{name}:")]
    if len(prefixed) == 1:
        return str(prefixed[0])
    columns = [str(c) for c in frame.columns if c not in ("arch", "reason")]
    raise InvalidOptionError(f"no column {name!r} in this run; columns: {', '.join(columns)}")


def _mask(frame: pd.DataFrame, condition: str) -> pd.Series:
    match = _CONDITION.match(condition)
    if not match:
        raise InvalidOptionError(
            f"cannot read the condition {condition!r}; write NAME OP VALUE with OP one of <=, >=, <, >, ==, != "
            "(e.g. macs<=20e6, accuracy>=0.9, evaluator==train)"
        )
    name, op, raw = match.groups()
    column = frame[resolve_column(frame, name)]
    try:
        value: float | str = float(raw)
    except ValueError:
        if op not in ("==", "!=") or pd.api.types.is_numeric_dtype(column):
            raise InvalidOptionError(f"condition {condition!r}: {raw!r} is not a number") from None
        value = raw
    if isinstance(value, float):
        column = pd.to_numeric(column, errors="coerce")
    return pd.Series(_COMPARE[op](column.to_numpy(), value), index=frame.index)


def load_run(path: str | Path | None = None, *, storage: str | None = None, name: str | None = None) -> Run:
    """Open a run by its directory, or by a storage URL (and the run's name, when the storage holds several).

    Raises:
        MissingDataError: no run there.
    """
    if path is None and storage is None:
        raise InvalidOptionError("give a run directory or a storage URL")
    config = None
    if path is not None:
        path = Path(path)
        config_file = path / CONFIG_FILE
        if not config_file.is_file():
            raise MissingDataError(f"{path} is no run directory: it has no {CONFIG_FILE}")
        config = load_config(config_file, check_options=False)  # checked when the search began
        storage = storage or config.storage.url or store_url(path)
        name = name or config.name
    assert storage is not None
    store = ResultStore.open(storage, name)
    if config is None and "config" in store.study.user_attrs:
        config = ExperimentConfig.model_validate(store.study.user_attrs["config"], context=NAMES_ONLY)
    return Run(store, config, path)
