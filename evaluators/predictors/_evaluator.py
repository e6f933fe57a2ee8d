"""The ``predictor`` evaluator: a performance predictor fitted on architectures a trusted evaluator measured."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field, model_validator

from nas import (
    EVALUATORS,
    PREDICTORS,
    Architecture,
    DataSpec,
    Direction,
    EvalResult,
    Evaluator,
    EvaluatorContext,
    Figure,
    InvalidArchitectureError,
    InvalidOptionError,
    MissingDataError,
    NetworkSpace,
    Provenance,
    ReadsData,
    Task,
    Unit,
    create_predictor,
    register_evaluator,
)
from nas import Options as BaseOptions
from nas.core.registry import registered

#: The file `PredictorEvaluator.prepare` writes: the training data, from which the predictor is refitted exactly.
CHECKPOINT = "predictor.json"


class PredictorEvaluatorOptions(BaseOptions):
    """The options of the ``predictor`` evaluator (see `PredictorEvaluator`)."""

    predictor: Annotated[str, registered(PREDICTORS)] = "random-forest"
    metric: str = "accuracy"
    trusted: Annotated[str, registered(EVALUATORS)] | None = None
    trusted_options: dict[str, Any] = Field(default_factory=dict)
    train_size: Annotated[int, Field(ge=2)] = 100
    predictor_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _components(self) -> PredictorEvaluatorOptions:
        """The options of the predictor and of the trusted evaluator are theirs."""
        if self.predictor_options:
            PREDICTORS.options(self.predictor, self.predictor_options)
        if self.trusted is not None:
            EVALUATORS.options(self.trusted, self.trusted_options)
        elif self.trusted_options:
            raise ValueError("trusted_options apply to a trusted evaluator; give trusted too")
        return self


@register_evaluator("predictor")
class PredictorEvaluator(Evaluator):
    """Predicts a metric with a registered `Predictor`: no training, milliseconds per batch.

    The predictor learns from evaluated architectures: either given with `fit`, or measured in `prepare` by a
    trusted evaluator (training, a table) on ``train_size`` random architectures. The checkpoint is the training
    data as JSON (architectures, values, predictor and seed), so loading it refits the same predictor exactly.
    Each result's metrics hold the prediction (``metric``) and its uncertainty (``metric + "_std"``); costs are the
    space's MACs and parameters.

    From its context: the space, the seed (of the training sample and the predictor), and the checkpoint `prepare`
    wrote, which it loads. The trusted evaluator gets the same context (it reads the data, if any).

    Options (`PredictorEvaluatorOptions`):
        predictor: a registered predictor name (see ``nas.PREDICTORS.names()``).
        metric: the metric to learn and predict.
        trusted: the registered evaluator that measures the training architectures in `prepare`.
        trusted_options: its options.
        train_size: architectures the trusted evaluator measures in `prepare`.
        predictor_options: the predictor's options (``encoding``, ...).

    Example:
        >>> context = nas.create_context("nb201-table", "nb201", "cifar10")  # doctest: +SKIP
        >>> evaluator = nas.create_evaluator(  # doctest: +SKIP
        ...     "predictor", context, trusted="nb201-table", trusted_options={"devices": []}, train_size=100
        ... )
        >>> evaluator.prepare(Path("run"))  # doctest: +SKIP
        >>> evaluator.evaluate(archs)[0].metrics  # doctest: +SKIP
        {'accuracy': 91.2, 'accuracy_std': 0.8}
    """

    Options = PredictorEvaluatorOptions

    def __init__(self, context: EvaluatorContext, options: PredictorEvaluatorOptions | None = None) -> None:
        options = PredictorEvaluatorOptions() if options is None else options
        self.context, self.options = context, options
        self.space, self.metric, self.seed = context.space, options.metric, context.seed
        self.predictor_name, self.train_size = options.predictor, options.train_size
        self.predictor = create_predictor(options.predictor, self.space, seed=self.seed, **options.predictor_options)
        self.trusted = options.trusted
        self.training: tuple[list[Architecture], list[float]] | None = None
        self._trusted_evaluator: Evaluator | None = None
        self._figure: Figure | None = None  # the metric as the checkpoint's trusted evaluator declared it
        if context.checkpoint is not None:
            self._load(context.checkpoint)

    @classmethod
    def data_options(cls, options: BaseOptions) -> type[BaseOptions]:
        """The trusted evaluator's data options (none without one that reads data)."""
        reader = _trusted_reader(options)
        return BaseOptions if reader is None else reader[0].data_options(reader[1])

    @classmethod
    def data_task(cls, data: DataSpec, options: BaseOptions) -> Task | None:
        """The task of the data, as the trusted evaluator reads it (none without one that reads data)."""
        reader = _trusted_reader(options)
        return None if reader is None else reader[0].data_task(data, reader[1])

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
                    "a checkpoint in its context, or call fit with evaluated results"
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
        return self.trusted or "given results"

    def _trusted(self) -> Evaluator:
        """The trusted evaluator, with this evaluator's context (but not its checkpoint)."""
        assert self.trusted is not None
        if self._trusted_evaluator is None:  # created once: figures and prepare both ask it
            context = dataclasses.replace(self.context, checkpoint=None)
            self._trusted_evaluator = EVALUATORS.create(self.trusted, context, **self.options.trusted_options)
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


def _trusted_reader(options: BaseOptions) -> tuple[ReadsData, BaseOptions] | None:
    """The trusted evaluator's class and options, if ``options`` (a predictor evaluator's) give one that reads
    data."""
    if not isinstance(options, PredictorEvaluatorOptions):
        raise InvalidOptionError(f"the predictor evaluator's options are PredictorEvaluatorOptions; got {options!r}")
    if options.trusted is None:
        return None
    trusted = EVALUATORS.get(options.trusted)
    if not isinstance(trusted, ReadsData):
        return None
    return trusted, EVALUATORS.options(options.trusted, options.trusted_options)
