"""The Optuna bridge: every sampler on every kind of dimension, failures, pruned and foreign results, errors."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import statistics

import optuna
import pytest
from optuna.trial import TrialState

import nas
from nas import Deduplicated, EvalResult, Objective, Provenance, Status
from nas.search.strategies._optuna import SAMPLERS  # registers "optuna" until nas.strategies imports the bridge

ACCURACY = [Objective.parse("max:accuracy")]
ACCURACY_AND_MACS = [Objective.parse("max:accuracy"), Objective.parse("min:macs")]

#: Options that make each sampler leave its random start after two trials (GP's model costs 0.2 to 1 s an ask).
QUICK = {
    "gp": {"n_startup_trials": 2},
    "motpe": {"n_startup_trials": 2},
    "nsga2": {"population_size": 2},
    "random": {},
    "tpe": {"n_startup_trials": 2},
}


@pytest.fixture(scope="module")
def nb201():
    return nas.create_space("nb201")


@pytest.fixture(scope="module")
def pooling():
    return nas.create_space("resnet20-pooling")  # downsample_at's options are tuples


def score(arch, space=None) -> EvalResult:
    """A deterministic stand-in for an evaluator: accuracy from the arch_id, and the MACs when a space is given."""
    costs = space.cost(arch).to_dict() if space else {}
    return EvalResult(arch, {"accuracy": int(arch.arch_id[:4], 16) / 655.36}, costs, Provenance("test-score"))


def run(strategy, rounds: int = 3, batch: int = 3, space=None) -> list:
    asked = []
    for _ in range(rounds):
        archs = strategy.ask(batch)
        asked += archs
        strategy.tell([score(a, space) for a in archs])
    return asked


def optuna_strategy(space, sampler="tpe", objectives=ACCURACY, seed=0, **options):
    return nas.create_strategy("optuna", space, objectives, seed=seed, sampler=sampler, sampler_options=options)


def states(strategy) -> list[TrialState]:
    return [t.state for t in strategy.study.trials]


@pytest.mark.parametrize("space_name", ["nb201", "pooling"])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_proposes_valid_architectures_repeatably(request, sampler, space_name):
    space = request.getfixturevalue(space_name)
    rounds, batch = (3, 1) if sampler == "gp" else (3, 3)
    asked = run(optuna_strategy(space, sampler, **QUICK[sampler]), rounds, batch)
    assert len(asked) == rounds * batch and all(space.validate(a) is None for a in asked)
    assert run(optuna_strategy(space, sampler, **QUICK[sampler]), rounds, batch) == asked, "same seed, same search"
    assert optuna_strategy(space, sampler, seed=1, **QUICK[sampler]).ask(batch) != asked[:batch]


def test_results_stopped_early_are_pruned_trials(nb201):
    strategy = optuna_strategy(nb201)
    (arch,) = strategy.ask(1)
    strategy.tell([dataclasses.replace(score(arch), status=Status.PRUNED)])
    assert states(strategy) == [TrialState.PRUNED]


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_multi_objective(nb201, sampler):
    strategy = optuna_strategy(nb201, sampler, objectives=ACCURACY_AND_MACS, **QUICK[sampler])
    asked = run(strategy, rounds=5, space=nb201)
    assert strategy.study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert all(
        t.values == [score(a).value("accuracy"), nb201.cost(a).macs]
        for t, a in zip(strategy.study.trials, asked, strict=True)
    )
    front = strategy.study.best_trials
    assert front and all(t.state is TrialState.COMPLETE for t in front)


def test_failed_and_nan_results_are_failed_trials_and_the_search_goes_on(nb201):
    strategy = optuna_strategy(nb201, **QUICK["tpe"])
    archs = strategy.ask(4)
    no_accuracy = EvalResult(archs[1], {"loss": 0.3}, {}, Provenance("test"))
    strategy.tell([EvalResult.failed(archs[0], "diverged", Provenance("test")), no_accuracy])
    strategy.tell([score(a) for a in archs[2:]])
    run(strategy)
    assert states(strategy) == [TrialState.FAIL] * 2 + [TrialState.COMPLETE] * 11


def test_results_of_architectures_never_asked_are_added_to_the_study(nb201):
    strategy = optuna_strategy(nb201)
    foreign = nb201.sample_many(3, 0)
    strategy.tell([score(foreign[0]), score(foreign[1]), EvalResult.failed(foreign[2], "oom", Provenance("test"))])
    assert states(strategy) == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]
    added = strategy.study.trials[0]
    assert nb201.arch({name: json.loads(label) for name, label in added.params.items()}) == foreign[0]
    assert added.value == score(foreign[0]).value("accuracy")
    with pytest.raises(nas.InvalidArchitectureError, match="belongs to space 'nb201'"):
        optuna_strategy(nas.create_space("resnet20-pooling")).tell([score(foreign[0])])


def test_duplicates_answered_by_deduplicated_finish_their_trials():
    space = nas.create_space("resnet20-pooling", num_downsample=1)  # 27 architectures: duplicates are frequent
    inner = optuna_strategy(space, **QUICK["tpe"])
    asked = run(Deduplicated(inner), rounds=6, batch=4)
    assert len(asked) == len(set(asked)) == 24
    assert len(inner.study.trials) > 24 and set(states(inner)) == {TrialState.COMPLETE}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_any_sampler_class_that_takes_a_seed(nb201):
    asked = run(optuna_strategy(nb201, optuna.samplers.NSGAIIISampler, population_size=4))
    assert run(optuna_strategy(nb201, optuna.samplers.NSGAIIISampler, population_size=4)) == asked


def test_bad_samplers_and_options(nb201, monkeypatch):
    with pytest.raises(nas.InvalidOptionError, match="unknown optuna sampler 'cmaes'; choose one of gp, motpe, nsga2"):
        optuna_strategy(nb201, "cmaes")
    with pytest.raises(nas.InvalidOptionError, match="PartialFixedSampler takes no seed"):
        optuna_strategy(nb201, optuna.samplers.PartialFixedSampler)
    with pytest.raises(nas.InvalidOptionError, match="unknown sampler_options population, seed .* population_size"):
        nas.create_strategy("optuna", nb201, ACCURACY, sampler="nsga2", sampler_options={"population": 4, "seed": 1})
    with pytest.raises(nas.InvalidOptionError, match="NSGAIISampler rejects sampler_options .* greater than or equal"):
        optuna_strategy(nb201, "nsga2", population_size=1)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(nas.MissingExtraError, match=r"needs scipy: pip install 'nas-pareto\[predictors\]'"):
        optuna_strategy(nb201, "gp")


def test_optuna_stays_quiet_and_its_verbosity_is_left_alone(nb201, capfd):
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        run(optuna_strategy(nb201))
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(verbosity)
    assert "Trial" not in capfd.readouterr().err


def test_tpe_learns(nb201):
    """On the number of 3x3 convolutions in the cell, TPE's best after 60 trials beats random search's."""

    def best(sampler: str, seed: int) -> float:
        strategy = optuna_strategy(nb201, sampler, seed=seed)
        values = []
        for _ in range(12):
            archs = strategy.ask(5)
            results = [
                EvalResult(a, {"accuracy": list(a.choices.values()).count("nor_conv_3x3")}, {}, Provenance("t"))
                for a in archs
            ]
            strategy.tell(results)
            values += [r.value("accuracy") for r in results]
        return max(values)

    tpe, random = (statistics.mean(best(sampler, seed) for seed in range(5)) for sampler in ("tpe", "random"))
    assert tpe >= random + 1, (tpe, random)  # 5.4 against 3.6 with Optuna 5.0
