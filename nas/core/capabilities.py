"""Optional abilities of evaluators, as typed protocols the core checks with `isinstance` (never `hasattr`).

An evaluator has an ability when it defines the protocol's methods; `typing.runtime_checkable` makes the check an
`isinstance`. `ReadsData` is an ability of the evaluator's class (checked before any evaluator exists). Spaces have
one optional ability, building networks: `nas.core.space.NetworkSpace`.

Example:
    >>> isinstance(evaluator, KnowsCosts)  # doctest: +SKIP
    True
    >>> isinstance(nas.EVALUATORS.get("train"), ReadsData)  # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from nas.core.options import Options
from nas.core.space import Architecture, Task

if TYPE_CHECKING:
    import pandas as pd

    from nas.core.evaluation import DataSpec


@runtime_checkable
class KnowsCosts(Protocol):
    """Knows costs of architectures without evaluating them (a latency table's, say): strategies screen proposals
    against bounds and predictors take them as features."""

    def known_costs(self, archs: Sequence[Architecture]) -> Mapping[str, Sequence[float]]:
        """Cost name -> one value per architecture, in order."""
        ...


@runtime_checkable
class TabularLookup(Protocol):
    """Looks every architecture up in a table: a benchmark scores a search against the table's true front."""

    def archs(self) -> list[Architecture]:
        """Every architecture of the table, in the table's row order."""
        ...

    def table(self) -> pd.DataFrame:
        """One row per architecture of `archs`, one column per figure the evaluator declares."""
        ...


@runtime_checkable
class WeightSharing(Protocol):
    """Scores architectures with weights inherited from a shared network (a supernet): an export starts from the
    subnet's weights."""

    def subnet(self, arch: Architecture) -> Any:
        """``arch``'s network (a `torch.nn.Module`) with its inherited weights."""
        ...


@runtime_checkable
class Prepares(Protocol):
    """Builds shared state once before evaluating (a trained supernet, a fitted predictor); workers then load the
    checkpoint it returns (handed to them as `EvaluatorContext.checkpoint`)."""

    def prepare(self, workdir: Path) -> Path:
        """Build the shared state under ``workdir``; the checkpoint's path."""
        ...


@runtime_checkable
class ReadsData(Protocol):
    """An evaluator class whose evaluators read the context's data (`nas.DataSpec`): it declares the options of the
    data's loading and split (a config's ``dataset.options``, checked when the config is read) and tells the task the
    data sets, for which a search creates its space of networks when the config's space options do not give it."""

    @classmethod
    def data_options(cls, options: Options) -> type[Options]:
        """The model of the data's options for an evaluator with ``options`` (its validated options)."""
        ...

    @classmethod
    def data_task(cls, data: DataSpec, options: Options) -> Task | None:
        """The input shape and number of classes of ``data`` (None: it sets no task); `MissingDataError` when the
        data cannot be read, `InvalidOptionError` when it is not one the evaluator reads."""
        ...
