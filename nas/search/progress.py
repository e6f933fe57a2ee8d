"""The progress display of a search: evaluations done and left, best value per objective, Pareto front size, ETA."""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import TracebackType

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nas.core.evaluation import EvalResult, Objective
from nas.core.pareto import pareto_mask


class SearchProgress:
    """A rich progress bar that follows the results a search records (a context manager).

    Args:
        objectives: the search's objectives.
        total: the evaluation budget of the run, if it has one.
        console: where to draw; a console that is no terminal gets the final state only.
        enabled: False draws nothing (the figures are still kept).
    """

    def __init__(
        self, objectives: Sequence[Objective], total: int | None, console: Console | None = None, enabled: bool = True
    ) -> None:
        self.objectives = tuple(objectives)
        self.best = [math.nan] * len(self.objectives)
        self.front = np.empty((0, len(self.objectives)))
        self.done = 0
        self._progress = Progress(
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(compact=True),
            TextColumn("{task.description}"),
            console=console,
            disable=not enabled,
        )
        self._task = self._progress.add_task("", total=total)

    def __enter__(self) -> SearchProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._progress.stop()

    def update(self, results: Sequence[EvalResult]) -> None:
        """Count ``results``; the OK ones that meet every bound update the best values and the front."""
        self.done += len(results)
        rows = [
            [r.value(o.name) for o in self.objectives]
            for r in results
            if r.ok and all(o.feasible(r.value(o.name)) for o in self.objectives)
        ]
        rows = [row for row in rows if all(math.isfinite(v) for v in row)]
        if rows:
            values = np.vstack([self.front, np.asarray(rows, dtype=float)])
            self.front = values[pareto_mask(values, [o.resolved for o in self.objectives])]
            for i, objective in enumerate(self.objectives):
                column = self.front[:, i] * objective.sign()
                self.best[i] = float(column.max()) * objective.sign()
        self._progress.update(self._task, completed=self.done, description=self.summary())

    def summary(self) -> str:
        """``best accuracy 0.953, macs 1.2e+06 | front 7``."""
        best = ", ".join(f"{o.name} {b:.4g}" for o, b in zip(self.objectives, self.best, strict=True))
        return f"best {best} | front {len(self.front)}"
