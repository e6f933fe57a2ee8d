"""The ``predictor`` evaluator: a performance predictor fitted on architectures a trusted evaluator measured."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nas import (
    EVALUATORS,
    Architecture,
    Direction,
    EvalResult,
    Evaluator,
    Figure,
    InvalidArchitectureError,
    InvalidOptionError,
    MissingDataError,
    NetworkSpace,
    Provenance,
    SearchSpace,
    Unit,
    create_evaluator,
    create_predictor,
)

#: The file `PredictorEvaluator.prepare` writes: the training data, from which the predictor is refitted exactly.
CHECKPOINT = "predictor.json"


class PredictorEvaluator(Evaluator):
    """Predicts a metric with a registered `Predictor`: no training, milliseconds per batch.

    The predictor learns from evaluated architectures: either given with `fit`, or measured in `prepare` by a
    trusted evaluator (training, a table) on ``train_size`` random architectures. The checkpoint is the training
    data as JSON (architectures, values, predictor and seed), so loading it refits the same predictor exactly.
    Each result's metrics hold the prediction (``metric``) and its uncertainty (``metric + "_std"``); costs are the
    space's MACs and parameters.

    Args:
        space: the search space.
        predictor: a registered predictor name (see ``nas.PREDICTORS.names()``).
        metric: the metric to learn and predict.
        trusted: the evaluator that measures the training architectures in `prepare` (a name or an instance).
        trusted_options: options for a trusted evaluator given by name (the space is passed when it takes one).
        train_size: architectures the trusted evaluator measures in `prepare`.
        checkpoint: a checkpoint written by `prepare` to load instead of measuring.
        seed: seeds the training sample and the predictor.
        predictor_options: more options for the predictor (``encoding``, ``proxies``, ...).

    Example:
        >>> evaluator = nas.create_evaluator(  # doctest: +SKIP
        ...     "predictor", space=space, trusted="nb201-table", trusted_options={"devices": []}, train_size=100
        ... )
        >>> evaluator.prepare(Path("run"))  # doctest: +SKIP
        >>> evaluator.evaluate(archs)[0].metrics  # doctest: +SKIP
        {'accuracy': 91.2, 'accuracy_std': 0.8}
    """

    name: ClassVar[str] = "predictor"

    def __init__(
        self,
        space: SearchSpace,
        predictor: str = "random-forest",
        metric: str = "accuracy",
        trusted: str | Evaluator | None = None,
        trusted_options: Mapping[str, Any] | None = None,
        train_size: int = 100,
        checkpoint: str | Path | None = None,
        seed: int = 0,
        predictor_options: Mapping[str, Any] | None = None,
    ) -> None:
        if train_size < 2:
            raise InvalidOptionError(f"{self.name}: train_size must be at least 2; got {train_size}")
        self.space, self.metric, self.seed = space, metric, seed
        self.predictor_name, self.train_size = predictor, train_size
        self.predictor = create_predictor(predictor, space, seed=seed, **(predictor_options or {}))
        self.trusted, self.trusted_options = trusted, dict(trusted_options or {})
        self.training: tuple[list[Architecture], list[float]] | None = None
        self._trusted_evaluator: Evaluator | None = None
        self._figure: Figure | None = None  # the metric as the checkpoint's trusted evaluator declared it
        if checkpoint is not None:
            self._load(Path(checkpoint))

    def fit(self, results: Sequence[EvalResult]) -> PredictorEvaluator:
        """Learn from evaluated architectures (the failed ones and those without the metric are left out)."""
        usable = [r for r in results if r.ok and np.isfinite(r.value(self.metric))]
        if len(usable) < 2:
            raise InvalidOptionError(
                f"{self.name}: {len(usable)} of {len(results)} results have a finite {self.metric!r}; at least 2 "
                "are needed to fit a predictor"
            )
        archs, values = [r.arch for r in usable], [r.value(self.metric) for r in usable]
        self.predictor.fit(archs, values)
        self.training = (archs, values)
        return self

    def prepare(self, workdir: Path) -> Path:
        """Measure ``train_size`` random architectures with the trusted evaluator (unless already fitted), fit,
        and write the checkpoint under ``workdir``."""
        if self.training is None:
            if self.trusted is None:
                raise InvalidOptionError(
                    f"{self.name} has no data to learn from: give a trusted evaluator (e.g. trusted='train'), "
                    "a checkpoint, or call fit with evaluated results"
                )
            archs = self.space.sample_many(self.train_size, np.random.default_rng([self.seed, 0]))
            self.fit(self._trusted().evaluate(list({a.arch_id: a for a in archs}.values())))
        assert self.training is not None
        archs, values = self.training
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / CHECKPOINT
        state = {
            "predictor": self.predictor_name,
            "metric": self.metric,
            "seed": self.seed,
            "space": self.space.name,
            "archs": [a.to_dict() for a in archs],
            "values": values,
        }
        if self.trusted is not None:
            declared = self._declared()
            state["figure"] = {"direction": declared.direction.value, "unit": declared.unit.value}
        path.write_text(json.dumps(state))
        return path

    def figures(self) -> tuple[Figure, ...]:
        """The metric as the trusted evaluator declares it (as its checkpoint recorded it; a score to maximize when
        the predictor learnt from results given to `fit`), its uncertainty ``<metric>_std`` (minimized) and the
        space's costs."""
        declared = self._declared()
        costs = self.space.figures() if isinstance(self.space, NetworkSpace) else ()
        return (declared, Figure(f"{self.metric}_std", Direction.MIN, declared.unit), *costs)

    def _declared(self) -> Figure:
        if self.trusted is None:
            return self._figure or Figure(self.metric, Direction.MAX)
        figures = self._trusted().figures()
        declared = next((f for f in figures if f.name == self.metric), None)
        if declared is None:
            raise InvalidOptionError(
                f"{self.name}: the trusted evaluator {self._source} does not produce the metric {self.metric!r}; it "
                f"produces {', '.join(f.name for f in figures)}"
            )
        return declared

    def evaluate(self, archs: Sequence[Architecture], budget: Mapping[str, float] | None = None) -> list[EvalResult]:
        """One prediction per architecture; one outside the space fails with the reason. ``budget`` is ignored."""
        if self.training is None:
            raise InvalidOptionError(f"{self.name}: call prepare (or fit) before evaluate")
        start = time.perf_counter()
        valid: dict[int, Architecture] = {}
        reasons: dict[int, str] = {}
        for i, arch in enumerate(archs):
            try:
                self.space.validate(arch)
                valid[i] = arch
            except InvalidArchitectureError as error:
                reasons[i] = str(error)
        predicted = self.predictor.predict(list(valid.values())) if valid else None
        rows = {i: row for row, i in enumerate(valid)}
        provenance = Provenance(
            self.name,
            seed=self.seed,
            wall_time_s=(time.perf_counter() - start) / max(len(archs), 1),
            details={"predictor": self.predictor_name, "trained_on": len(self.training[0]), "trusted": self._source},
        )
        results = []
        for i, arch in enumerate(archs):
            if i in reasons or predicted is None:
                results.append(EvalResult.failed(arch, reasons[i], provenance))
                continue
            metrics = {self.metric: float(predicted.mean[rows[i]]), f"{self.metric}_std": float(predicted.std[rows[i]])}
            costs = self.space.cost(arch).to_dict() if isinstance(self.space, NetworkSpace) else {}
            results.append(EvalResult(arch, metrics, costs, provenance))
        return results

    @property
    def _source(self) -> str:
        if isinstance(self.trusted, Evaluator):
            return self.trusted.name
        return self.trusted or "given results"

    def _trusted(self) -> Evaluator:
        if isinstance(self.trusted, Evaluator):
            return self.trusted
        assert self.trusted is not None
        if self._trusted_evaluator is None:  # created once: figures and prepare both ask it
            options = dict(self.trusted_options)
            if "space" in inspect.signature(EVALUATORS.get(self.trusted)).parameters:
                options.setdefault("space", self.space)
            self._trusted_evaluator = create_evaluator(self.trusted, **options)
        return self._trusted_evaluator

    def _load(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text())
            archs = [Architecture.from_dict(a) for a in state["archs"]]
            values = [float(v) for v in state["values"]]
            written_figure = state.get("figure")  # written since figures are declared
            figure = None
            if written_figure is not None:
                figure = Figure(self.metric, Direction(written_figure["direction"]), Unit(written_figure["unit"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise MissingDataError(
                f"{path} is not a predictor checkpoint written by prepare (JSON with archs and values): {error}"
            ) from error
        written = tuple(state.get(key) for key in ("predictor", "metric", "seed", "space"))
        expected = (self.predictor_name, self.metric, self.seed, self.space.name)
        if written != expected:
            raise InvalidOptionError(
                f"{path} was written for (predictor, metric, seed, space) = {written}; this evaluator has {expected}"
            )
        self.predictor.fit(archs, values)
        self.training = (archs, values)
        self._figure = figure
