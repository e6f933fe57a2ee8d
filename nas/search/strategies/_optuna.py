"""The Optuna bridge: any Optuna sampler searches any space through its categorical dimensions."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, GPSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial
from pydantic import AfterValidator, Field

from nas.core.encodings import KnownCosts
from nas.core.errors import InvalidOptionError, MissingExtraError
from nas.core.evaluation import Direction, EvalResult, Objective, Status
from nas.core.options import Options
from nas.core.space import Architecture, SearchSpace, Value
from nas.search.strategies._base import Strategy, register_strategy

#: Sampler names. Optuna's TPE is multi-objective TPE when there are several objectives, so "motpe" (the name of
#: Optuna's former `MOTPESampler`) is the same sampler as "tpe", accepted with any number of objectives.
SAMPLERS: dict[str, type[BaseSampler]] = {
    "gp": GPSampler,
    "motpe": TPESampler,
    "nsga2": NSGAIISampler,
    "random": RandomSampler,
    "tpe": TPESampler,
}

#: Options the bridge gives a sampler unless ``sampler_options`` say otherwise. TPE models the dimensions jointly
#: (Optuna's default with one objective) also with several objectives, where Optuna's default models each dimension
#: alone: 3 times slower (12 instead of 4 ms per proposal after 300 trials on nb201), and blind to interactions.
_DEFAULT_OPTIONS: dict[type[BaseSampler], dict[str, Any]] = {TPESampler: {"multivariate": True}}

_STUDY_DIRECTIONS = {Direction.MAX: StudyDirection.MAXIMIZE, Direction.MIN: StudyDirection.MINIMIZE}


def _label(option: Value) -> str:
    """The categorical choice standing for ``option`` in the study: its JSON (Optuna's choices cannot be tuples)."""
    return json.dumps(option)


def _sampler_class(sampler: str | type[BaseSampler]) -> str | type[BaseSampler]:
    """``sampler`` if it names a sampler of `SAMPLERS` or is an Optuna sampler class; else a `ValueError`."""
    if sampler in SAMPLERS or (isinstance(sampler, type) and issubclass(sampler, BaseSampler)):
        return sampler
    raise ValueError(
        f"unknown optuna sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}, or an Optuna sampler class"
    )


class OptunaOptions(Options):
    """The options of the Optuna bridge (see `OptunaStrategy`)."""

    sampler: Annotated[str | type[BaseSampler], AfterValidator(_sampler_class)] = "tpe"
    sampler_options: dict[str, Any] = Field(default_factory=dict)


def _parameters(cls: type) -> list[str]:
    """The keyword arguments of a (third-party) class's constructor, in order."""
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _create_sampler(sampler: str | type[BaseSampler], options: Mapping[str, Any], seed: int) -> BaseSampler:
    """The sampler named ``sampler`` (or of that class), seeded with ``seed``, built with ``options``."""
    cls = SAMPLERS[sampler] if isinstance(sampler, str) else sampler
    valid = _parameters(cls)
    if "seed" not in valid:
        raise InvalidOptionError(
            f"optuna sampler {cls.__name__} takes no seed, so the same seed would not repeat a search"
        )
    accepted = [o for o in valid if o != "seed"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidOptionError(
            f"unknown sampler_options {', '.join(unknown)} for optuna sampler {cls.__name__} (the seed comes from the "
            f"strategy's); valid options: {', '.join(accepted)}"
        )
    if cls is GPSampler and importlib.util.find_spec("scipy") is None:
        raise MissingExtraError("optuna sampler GPSampler needs scipy: pip install 'nas-pareto[predictors]'")
    try:
        return cls(seed=seed, **{**_DEFAULT_OPTIONS.get(cls, {}), **options})  # type: ignore[call-arg]  # seed checked
    except (TypeError, ValueError) as error:
        raise InvalidOptionError(
            f"optuna sampler {cls.__name__} rejects sampler_options {dict(options)}: {error}"
        ) from error


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna without its INFO message per study and per trial; its global verbosity is restored on exit."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


@register_strategy("optuna")
class OptunaStrategy(Strategy):
    """Runs an Optuna sampler on an in-memory study whose parameters are the space's dimensions (categorical; an
    option's label is its JSON) and whose directions are the objectives'.

    Each proposal is a trial of the study; its result finishes that trial. A result for an architecture the strategy
    did not propose (a duplicate answered by `Deduplicated`) is added to the study as a finished trial, so every
    known result informs the sampler. Failed results, and results that lack an objective's value (NaN), are failed
    trials; results stopped early by a multi-fidelity scheduler are pruned trials.

    Options (`OptunaOptions`):
        sampler: "tpe" (multi-objective TPE with several objectives; multivariate unless the options say otherwise),
            "motpe" (the same), "nsga2", "random", "gp", or an Optuna sampler class whose constructor takes ``seed``.
        sampler_options: keyword arguments of the sampler's constructor, e.g. ``{"n_startup_trials": 20}``. The
            sampler's seed is drawn from the strategy's generator.

    Example:
        >>> objectives = [Objective.parse("max:accuracy"), Objective.parse("min:macs")]  # doctest: +SKIP
        >>> strategy = nas.create_strategy("optuna", space, objectives, seed=0, sampler="nsga2")  # doctest: +SKIP
    """

    Options = OptunaOptions

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int | None = None,
        known_costs: KnownCosts | None = None,
        options: OptunaOptions | None = None,
    ) -> None:
        options = OptunaOptions() if options is None else options
        super().__init__(space, objectives, seed, known_costs, options)
        self._choices = {d.name: {_label(o): o for o in d.options} for d in space.dimensions()}
        self._distributions: dict[str, BaseDistribution] = {
            name: CategoricalDistribution(list(labels)) for name, labels in self._choices.items()
        }
        directions = [_STUDY_DIRECTIONS[o.resolved] for o in self.objectives]
        seeded = _create_sampler(options.sampler, options.sampler_options, seed=int(self.rng.integers(2**31)))
        with _quiet():
            self.study = optuna.create_study(sampler=seeded, directions=directions)
        self._pending: dict[str, list[int]] = {}  # arch_id -> numbers of its trials still running

    def ask(self, n: int) -> list[Architecture]:
        archs = []
        for _ in range(n):
            trial = self.study.ask(self._distributions)
            arch = self.space.arch({name: self._choices[name][label] for name, label in trial.params.items()})
            self._pending.setdefault(arch.arch_id, []).append(trial.number)
            archs.append(arch)
        return archs

    def tell(self, results: Sequence[EvalResult]) -> None:
        with _quiet():
            for result in results:
                values = [result.value(o.name) for o in self.objectives]
                ok = result.ok and not any(math.isnan(v) for v in values)
                pruned = result.status is Status.PRUNED
                state = TrialState.COMPLETE if ok else TrialState.PRUNED if pruned else TrialState.FAIL
                number = self._pop_pending(result.arch)
                if number is None:
                    self.study.add_trial(
                        create_trial(
                            state=state,
                            values=values if ok else None,
                            params=self._params(result.arch),
                            distributions=self._distributions,
                        )
                    )
                else:
                    self.study.tell(number, values if ok else None, state=state)

    def _pop_pending(self, arch: Architecture) -> int | None:
        """The number of the oldest running trial that proposed ``arch`` (no longer pending), if any."""
        numbers = self._pending.get(arch.arch_id)
        if not numbers:
            return None
        number = numbers.pop(0)
        if not numbers:
            del self._pending[arch.arch_id]
        return number

    def _params(self, arch: Architecture) -> dict[str, str]:
        """The study's parameters for ``arch`` (validated first)."""
        self.space.validate(arch)
        return {name: _label(arch.choices[name]) for name in self._choices}
