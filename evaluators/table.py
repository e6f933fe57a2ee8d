"""Any table of architectures and their figures as an evaluator: a CSV or Parquet file that a config names.

Each row is one architecture of the search space, identified by a key in one of three formats:

- ``nb201-string``: the ``key`` column holds NAS-Bench-201 strings (``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|``),
  on the ``nb201`` space;
- ``arch-json``: the ``key`` column holds JSON objects of the architecture's choices (``{"edge0": "none", ...}``);
- ``choices-columns``: one column per dimension of the space, named as the dimension (no ``key``).

``metrics`` name the columns to report as metrics, each with its direction (``max`` or ``min``: a table cannot know
which is better); ``costs`` the columns to report as costs (minimized); ``units`` the unit of any of them (``score``
by default). On a space of networks the space's analytic costs (``macs``, ``params``) come too, unless the table has
columns of those names. Reading Parquet needs pyarrow; CSV is always read.

Example (config)::

    evaluator:
      name: table
      options: {path: accuracies.csv, key: arch_str, key_format: nb201-string,
                metrics: {test_acc: max}, units: {test_acc: percent}}
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from nas import (
    Architecture,
    Direction,
    EvalResult,
    Evaluator,
    EvaluatorContext,
    Figure,
    InvalidArchitectureError,
    InvalidOptionError,
    MissingDataError,
    MissingExtraError,
    NetworkSpace,
    Options,
    Provenance,
    Unit,
    register_evaluator,
)
from search_spaces.nb201 import NB201Space

KeyFormat = Literal["nb201-string", "arch-json", "choices-columns"]
#: The file types the evaluator reads, by suffix.
SUFFIXES = (".csv", ".parquet")


class TableOptions(Options):
    """The table evaluator's options, checked together (see the module docstring)."""

    path: str
    key_format: KeyFormat
    key: str | None = None
    metrics: Annotated[dict[str, Annotated[Direction, Field(strict=False)]], Field(min_length=1)]
    costs: Annotated[tuple[str, ...], Field(strict=False)] = ()
    units: dict[str, Annotated[Unit, Field(strict=False)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> TableOptions:
        if self.key_format == "choices-columns" and self.key is not None:
            raise ValueError("key_format choices-columns reads one column per dimension: give no key")
        if self.key_format != "choices-columns" and self.key is None:
            raise ValueError(f"key_format {self.key_format} needs key, the column that holds the keys")
        both = sorted(set(self.metrics) & set(self.costs))
        if both:
            raise ValueError(f"{', '.join(both)} given as metric and as cost; give each column once")
        if len(set(self.costs)) != len(self.costs):
            raise ValueError(f"costs {list(self.costs)} name a column twice")
        stray = sorted(set(self.units) - set(self.metrics) - set(self.costs))
        if stray:
            raise ValueError(f"units of {', '.join(stray)}, which are neither metrics nor costs")
        return self


def read_table(path: Path) -> pd.DataFrame:
    """The CSV or Parquet file at ``path``; an error names the file and what is expected."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidOptionError(f"table {path}: expected a {' or '.join(SUFFIXES)} file")
    if not path.is_file():
        raise MissingDataError(f"table {path} not found (a relative path is read from the working directory)")
    if suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise MissingExtraError(f"reading the Parquet table {path} needs pyarrow: pip install pyarrow, or give a CSV")
    try:
        return pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:  # pandas' parser errors are ValueErrors
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MissingDataError(f"table {path} cannot be read as {suffix[1:]}: {first}") from None


@register_evaluator("table")
class TableEvaluator(Evaluator):
    """Looks architectures up in a table (see the module docstring): no training, microseconds per architecture.

    An architecture of the space that the table lacks is a failed result saying so; an unreadable file, a missing
    column, a key that is no architecture of the space, two rows of one architecture and a figure column that is not
    numeric are errors at creation, naming the file and what is expected.

    The context's space is the one the keys describe. Options (`TableOptions`):
        path: the ``.csv`` or ``.parquet`` file (a search makes a relative path absolute where it starts).
        key_format: ``nb201-string``, ``arch-json`` or ``choices-columns``.
        metrics: column -> ``max`` or ``min``.
        key: the column of the keys (not with ``choices-columns``).
        costs: columns reported as costs (minimized).
        units: column -> unit (``fraction``, ``percent``, ``MACs``, ``parameters``, ``ms``, ``nats``, ``score``).

    Example:
        >>> context = nas.EvaluatorContext(nas.create_space("nb201"))  # doctest: +SKIP
        >>> evaluator = nas.create_evaluator(  # doctest: +SKIP
        ...     "table", context, path="hp12.csv", key="arch_str", key_format="nb201-string",
        ...     metrics={"cifar10_test_acc_12ep": "max"},
        ... )
        >>> evaluator.evaluate(evaluator.archs()[:1])[0].metrics  # doctest: +SKIP
        {'cifar10_test_acc_12ep': 69.55}
    """

    Options = TableOptions
    path_options: ClassVar[tuple[str, ...]] = ("path",)

    def __init__(self, context: EvaluatorContext, options: TableOptions) -> None:
        space = context.space
        if options.key_format == "nb201-string" and not isinstance(space, NB201Space):
            raise InvalidOptionError(
                f"table evaluator: key_format nb201-string needs the nb201 space, not {space.name!r}; give keys as "
                "arch-json or choices-columns"
            )
        self.space, self.options = space, options
        self.path = Path(options.path).expanduser()
        frame = read_table(self.path)
        columns = [*options.metrics, *options.costs]
        key_columns = [d.name for d in space.dimensions()] if options.key is None else [options.key]
        missing = [c for c in (*key_columns, *columns) if c not in frame.columns]
        if missing:
            raise MissingDataError(
                f"table {self.path} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; it has "
                f"{', '.join(map(str, frame.columns))}"
            )
        self._archs = self._read_keys(frame, key_columns)
        self._rows = self._index(self._archs, frame, key_columns)
        self._values = {c: self._numbers(frame, c) for c in columns}
        self._network = space if isinstance(space, NetworkSpace) else None
        self._space_figures = (
            () if self._network is None else tuple(f for f in self._network.figures() if f.name not in columns)
        )
        self._table: pd.DataFrame | None = None

    # -- reading -------------------------------------------------------------------------------------------------
    def _read_keys(self, frame: pd.DataFrame, columns: list[str]) -> list[Architecture]:
        """One architecture per row, from the key ``columns`` in the options' format."""
        parse = self._parser()
        archs = []
        for i, key in enumerate(frame[columns].itertuples(index=False, name=None)):
            try:
                archs.append(parse(key))
            except InvalidArchitectureError as error:
                raise MissingDataError(f"table {self.path}, row {i + 1} (after the header): {error}") from None
        return archs

    def _parser(self) -> Callable[[tuple[Any, ...]], Architecture]:
        """Key (the row's key columns) -> architecture, for the options' key format."""
        space = self.space
        if isinstance(space, NB201Space) and self.options.key_format == "nb201-string":
            return lambda key: space.from_string(str(key[0]))
        if self.options.key_format == "arch-json":
            return lambda key: space.arch(_json_choices(key[0]))
        dims = space.dimensions()
        by_text = [{str(o): o for o in d.options} for d in dims]  # a CSV cell reads 3 or "3" alike

        def from_columns(key: tuple[Any, ...]) -> Architecture:
            return space.arch({d.name: o.get(str(v), v) for d, o, v in zip(dims, by_text, key, strict=True)})

        return from_columns

    def _index(self, archs: list[Architecture], frame: pd.DataFrame, columns: list[str]) -> dict[Architecture, int]:
        rows: dict[Architecture, int] = {}
        for i, arch in enumerate(archs):
            if arch in rows:
                key = ", ".join(f"{c}={frame[c].iloc[i]!r}" for c in columns)
                raise MissingDataError(
                    f"table {self.path}: rows {rows[arch] + 1} and {i + 1} (after the header) hold the same "
                    f"architecture ({key}); give each architecture once"
                )
            rows[arch] = i
        return rows

    def _numbers(self, frame: pd.DataFrame, column: str) -> np.ndarray:
        """A metric or cost column as floats (empty cells are NaN: such a result fails for want of the value)."""
        given = frame[column]
        values = pd.to_numeric(given, errors="coerce") if given.dtype != bool else given.where(given.isna())
        bad = np.flatnonzero(values.isna().to_numpy() & given.notna().to_numpy())
        if len(bad):
            raise MissingDataError(
                f"table {self.path}: column {column} is not numeric (row {bad[0] + 1} holds {given.iloc[bad[0]]!r}); "
                "metrics and costs are numbers"
            )
        return values.to_numpy(np.float64)

    # -- the evaluator -----------------------------------------------------------------------------------------
    def figures(self) -> tuple[Figure, ...]:
        units = self.options.units
        return (
            *(Figure(c, d, units.get(c, Unit.SCORE)) for c, d in self.options.metrics.items()),
            *(Figure(c, Direction.MIN, units.get(c, Unit.SCORE)) for c in self.options.costs),
            *self._space_figures,
        )

    def evaluate(self, archs: Sequence[Architecture], budget: Mapping[str, float] | None = None) -> list[EvalResult]:
        """One result per architecture; one outside the space or the table fails with the reason. ``budget`` is
        ignored: a table has one fidelity."""
        results = []
        for arch in archs:
            provenance = Provenance(self.name, details={"source": str(self.path)})
            try:
                row = self._row(arch)
            except InvalidArchitectureError as error:
                results.append(EvalResult.failed(arch, str(error), provenance))
                continue
            metrics = {c: float(self._values[c][row]) for c in self.options.metrics}
            costs = {c: float(self._values[c][row]) for c in self.options.costs}
            costs.update(self._space_costs(arch))
            provenance = Provenance(self.name, details={"source": str(self.path), "row": row})
            results.append(EvalResult(arch, metrics, costs, provenance))
        return results

    def _row(self, arch: Architecture) -> int:
        self.space.validate(arch)
        row = self._rows.get(arch)
        if row is None:
            raise InvalidArchitectureError(
                f"architecture {arch.arch_id} is not in the table {self.path.name} ({len(self._rows)} rows)"
            )
        return row

    def _space_costs(self, arch: Architecture) -> dict[str, float]:
        """The space's analytic costs the table does not give (none on a space of no networks)."""
        if self._network is None or not self._space_figures:
            return {}
        counted = self._network.cost(arch).to_dict()
        return {f.name: float(counted[f.name]) for f in self._space_figures}

    # -- capabilities: TabularLookup, KnowsCosts -------------------------------------------------------------
    def archs(self) -> list[Architecture]:
        """Every architecture of the table, in row order."""
        return list(self._archs)

    def table(self) -> pd.DataFrame:
        """One row per architecture of `archs`, one column per declared figure (a copy)."""
        if self._table is None:
            columns: dict[str, Any] = dict(self._values)
            counted = [self._space_costs(arch) for arch in self._archs]
            columns.update({f.name: [c[f.name] for c in counted] for f in self._space_figures})
            self._table = pd.DataFrame(columns)
        return self._table.copy()

    def known_costs(self, archs: Sequence[Architecture]) -> dict[str, list[float]]:
        """The cost columns (and the space's analytic costs) of ``archs``, known without evaluating them; NaN for an
        architecture the table lacks."""
        rows = []
        for arch in archs:
            self.space.validate(arch)
            rows.append(self._rows.get(arch))
        known = {c: [math.nan if r is None else float(self._values[c][r]) for r in rows] for c in self.options.costs}
        counted = [self._space_costs(arch) for arch in archs]
        known.update({f.name: [c[f.name] for c in counted] for f in self._space_figures})
        return known


def _json_choices(value: Any) -> dict[str, Any]:
    """A key of the arch-json format: a JSON object of choices."""
    try:
        choices = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as error:
        raise InvalidArchitectureError(f"{value!r} is not JSON ({error.msg}); expected an object of choices") from None
    if not isinstance(choices, dict):
        raise InvalidArchitectureError(f'{value!r} is not a JSON object of choices such as {{"edge0": "none"}}')
    return choices
