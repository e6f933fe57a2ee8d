"""Building what the framework hands an evaluator (`EvaluatorContext`) from names: the space is created for the task
of the data the evaluator reads, unless the space's options give it.

Example:
    >>> context = create_context("train", "macro-cnn", "digits", seed=1)  # doctest: +SKIP
    >>> context.space.input_shape, context.space.num_classes  # doctest: +SKIP
    ((1, 8, 8), 10)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.core.capabilities import ReadsData
from nas.core.errors import InvalidOptionError
from nas.core.evaluation import EVALUATORS, DataSpec, EvaluatorContext
from nas.core.space import SPACES, NetworkSpace, SearchSpace, Task, create_space

#: The options of a `NetworkSpace` that the data's task gives.
TASK_OPTIONS = tuple(f.name for f in dataclasses.fields(Task))


def fitted_space_options(
    space: str,
    evaluator: str,
    data: DataSpec,
    space_options: Mapping[str, Any] | None = None,
    evaluator_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``space_options``, completed with the task of ``data`` (as the evaluator ``evaluator`` reads it, see
    `ReadsData`) where ``space`` builds networks and its options do not give ``input_shape`` or ``num_classes``.

    Raises:
        InvalidOptionError, MissingDataError: the evaluator's options are invalid, or its data cannot be read.
    """
    options = dict(space_options or {})
    missing = [key for key in TASK_OPTIONS if key not in options]
    if not missing or not issubclass(SPACES.get(space), NetworkSpace):
        return options
    cls = EVALUATORS.get(evaluator)
    if not isinstance(cls, ReadsData):
        return options
    task = cls.data_task(data, EVALUATORS.options(evaluator, evaluator_options))
    if task is None:
        return options
    return {**{key: value for key, value in task.options().items() if key in missing}, **options}


def create_context(
    evaluator: str,
    space: str | SearchSpace,
    data: DataSpec | str = "digits",
    *,
    space_options: Mapping[str, Any] | None = None,
    evaluator_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    threads: int = 1,
    device: str = "cpu",
    run_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
) -> EvaluatorContext:
    """The context of the registered evaluator ``evaluator``: ``space`` (a space, or a registered name created with
    ``space_options`` fitted to the data's task, see `fitted_space_options`), the data (a `DataSpec` or a dataset
    name), and the rest as `EvaluatorContext` has them; ``evaluator_options`` are those the evaluator will be created
    with (some evaluators read their data according to them).

    Raises:
        InvalidOptionError: options given for a space object, or options that are invalid.
        MissingDataError: the data cannot be read where the space's task is taken from it.
    """
    spec = DataSpec(data) if isinstance(data, str) else data
    if isinstance(space, str):
        options = fitted_space_options(space, evaluator, spec, space_options, evaluator_options)
        space = create_space(space, **options)
    elif space_options:
        raise InvalidOptionError(
            f"space_options apply to a space given by name; got a space object and {space_options}"
        )
    run_dir, checkpoint = (None if p is None else Path(p) for p in (run_dir, checkpoint))
    return EvaluatorContext(space, spec, seed, threads, device, run_dir, checkpoint)
