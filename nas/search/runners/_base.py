"""The `Runner` contract: drives a search's ask -> evaluate -> tell loop on some workers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nas.core.evaluation import EVALUATORS, EvalResult, Evaluator, EvaluatorContext, Objective
from nas.core.space import Architecture


class Loop(Protocol):
    """What a runner drives: the search proposes architectures and records their results (see `nas.experiment`)."""

    @property
    def primary(self) -> Objective:
        """The objective an early-stopping scheduler ranks trials by."""

    def propose(self, n: int) -> list[Architecture]:
        """Up to ``n`` architectures to evaluate now; none when the budget is spent or the strategy has no more."""

    def record(self, results: Sequence[EvalResult]) -> None:
        """Store evaluated architectures and tell the strategy."""


@dataclass(frozen=True)
class EvaluatorSpec:
    """A registered evaluator's name, its context and its options: what a worker needs to build its own copy (it
    pickles). After `nas.Prepares.prepare`, the context holds the checkpoint the workers load."""

    name: str
    context: EvaluatorContext
    options: Mapping[str, Any] = field(default_factory=dict)

    def create(self) -> Evaluator:
        """A new evaluator (on whichever process calls it)."""
        return EVALUATORS.create(self.name, self.context, **self.options)


class Runner(ABC):
    """Evaluates what a `Loop` proposes until it proposes nothing, then returns.

    Args:
        workers: evaluations (or batches of cheap evaluations) in flight at once.
        batch_size: architectures per batch of a cheap evaluator (expensive evaluators take one at a time).
    """

    def __init__(self, workers: int = 1, batch_size: int = 16) -> None:
        self.workers, self.batch_size = workers, batch_size

    def check(self) -> None:  # noqa: B027 - nothing to check in process
        """Raise `InvalidOptionError` if the runner cannot start (e.g. no cluster at its address), before a search
        writes anything."""

    @abstractmethod
    def run(self, loop: Loop, spec: EvaluatorSpec, evaluator: Evaluator) -> None:
        """Evaluate with copies of ``spec``'s evaluator; ``evaluator`` is the prepared one of this process.

        A KeyboardInterrupt stops the run: what was recorded stays recorded, what was in flight is dropped.
        """

    def batch(self, evaluator: Evaluator) -> int:
        """How many architectures go to a worker at once."""
        return 1 if evaluator.expensive else self.batch_size


class LocalRunner(Runner):
    """Evaluates in this process, one batch at a time: no Ray needed (``--address local``)."""

    def run(self, loop: Loop, spec: EvaluatorSpec, evaluator: Evaluator) -> None:
        while archs := loop.propose(self.batch(evaluator)):
            loop.record(evaluator.evaluate(archs))
