"""Wrappers that screen any strategy's proposals: deduplication and cost constraints.

A wrapper asks its inner strategy, admits some proposals and answers the others itself, so the inner strategy is
told about every architecture it proposed: a duplicate gets the result of its original (now or when it arrives),
a proposal that breaks a constraint gets a failed result saying which. Asking is bounded: after ``max_rounds``
rounds that admit too little, `ask` returns what it has (possibly nothing: the space is exhausted).
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum

from nas.core.errors import InvalidOptionError
from nas.core.evaluation import EvalResult, Objective, Provenance
from nas.core.space import Architecture, NetworkSpace
from nas.search.strategies._base import Strategy


class _Screened(Strategy):
    """A strategy that forwards to ``inner`` and admits only the proposals `_admit` accepts."""

    def __init__(self, inner: Strategy, max_rounds: int = 100) -> None:
        if max_rounds < 1:
            raise InvalidOptionError(f"max_rounds must be a positive integer; got {max_rounds!r}")
        self.inner = inner
        self.space = inner.space
        self.objectives = inner.objectives
        self.rng = inner.rng
        self.known_costs = inner.known_costs
        self.max_rounds = max_rounds

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    def ask(self, n: int) -> list[Architecture]:
        admitted: list[Architecture] = []
        for _ in range(self.max_rounds):
            if len(admitted) >= n:
                break
            proposals = self.inner.ask(n - len(admitted))
            if not proposals:
                break
            admitted.extend(arch for arch in proposals if self._admit(arch))
        return admitted

    @abstractmethod
    def _admit(self, arch: Architecture) -> bool:
        """Whether ``arch`` is evaluated; when not, the wrapper has told (or will tell) ``inner`` its result."""

    def tell(self, results: Sequence[EvalResult]) -> None:
        self.inner.tell(results)


class DedupKey(StrEnum):
    """What counts as the same architecture: the same description, or the same function (`canonical`)."""

    ARCH_ID = "arch_id"
    CANONICAL = "canonical"


def _as(result: EvalResult, arch: Architecture) -> EvalResult:
    """``result`` answered for ``arch``, a duplicate of the architecture it was measured on."""
    details = {**result.provenance.details, "duplicate_of": result.arch_id}
    return dataclasses.replace(result, arch=arch, provenance=dataclasses.replace(result.provenance, details=details))


class Deduplicated(_Screened):
    """Evaluates each architecture once (by ``arch_id``, or by canonical class with ``key="canonical"``).

    Example:
        >>> strategy = Deduplicated(RandomStrategy(space, objectives, seed=0), key="canonical")  # doctest: +SKIP
    """

    def __init__(self, inner: Strategy, key: DedupKey | str = DedupKey.ARCH_ID, max_rounds: int = 100) -> None:
        super().__init__(inner, max_rounds)
        try:
            self.key = DedupKey(key)
        except ValueError:
            accepted = ", ".join(k.value for k in DedupKey)
            raise InvalidOptionError(f"unknown deduplication key {key!r}; choose one of {accepted}") from None
        self._results: dict[str, EvalResult] = {}
        self._waiting: dict[str, list[Architecture]] = {}  # pending key -> duplicates proposed meanwhile

    def _key(self, arch: Architecture) -> str:
        return (self.space.canonical(arch) if self.key is DedupKey.CANONICAL else arch).arch_id

    def _admit(self, arch: Architecture) -> bool:
        key = self._key(arch)
        if key in self._results:
            self.inner.tell([_as(self._results[key], arch)])
            return False
        if key in self._waiting:
            self._waiting[key].append(arch)
            return False
        self._waiting[key] = []
        return True

    def tell(self, results: Sequence[EvalResult]) -> None:
        answered = []
        for result in results:
            key = self._key(result.arch)
            self._results[key] = result
            answered += [result, *(_as(result, dup) for dup in self._waiting.pop(key, []))]
        self.inner.tell(answered)

    @property
    def seen(self) -> int:
        """Number of distinct architectures (or classes) evaluated."""
        return len(self._results)


CostFunction = Callable[[Architecture], Mapping[str, float]]


class Constrained(_Screened):
    """Evaluates only architectures whose known costs satisfy the bounds (e.g. ``macs<=20e6``).

    The costs come from ``cost_fn`` (default: the space's analytic MACs and parameters); a proposal that breaks a
    bound is told to the inner strategy as a failed result naming the bound, and is never evaluated.
    """

    def __init__(
        self,
        inner: Strategy,
        constraints: Sequence[Objective],
        cost_fn: CostFunction | None = None,
        max_rounds: int = 100,
    ) -> None:
        super().__init__(inner, max_rounds)
        unbounded = [c.name for c in constraints if c.bound is None]
        if not constraints or unbounded:
            raise InvalidOptionError(f"constraints need bounds such as macs<=20e6; got none for {unbounded or 'all'}")
        self.constraints = tuple(constraints)
        if cost_fn is None:
            space = self.space
            if not isinstance(space, NetworkSpace):
                raise InvalidOptionError(f"space {space.name!r} has no analytic cost: give the constraints' cost_fn")
            cost_fn = lambda arch: space.cost(arch).to_dict()  # noqa: E731
        self.cost_fn = cost_fn

    def _admit(self, arch: Architecture) -> bool:
        costs = self.cost_fn(arch)
        missing = [c.name for c in self.constraints if c.name not in costs]
        if missing:
            raise InvalidOptionError(
                f"constraint on {', '.join(missing)}: the cost function gives only {', '.join(sorted(costs))}"
            )
        broken = [c for c in self.constraints if not c.feasible(costs[c.name])]
        if not broken:
            return True
        reason = "; ".join(f"{c.name}={costs[c.name]:g} breaks the bound {c.bound:g}" for c in broken)
        self.inner.tell([EvalResult.failed(arch, reason, Provenance("constraint", details=dict(costs)))])
        return False
