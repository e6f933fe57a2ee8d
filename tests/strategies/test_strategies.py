"""Every registered strategy, and the wrappers around them, against the `Strategy` contract."""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections import Counter

import pytest

import nas
from nas import Constrained, Deduplicated, EvalResult, Objective, Provenance, Status

OBJECTIVES = [Objective.parse("max:accuracy")]


@pytest.fixture(scope="module")
def space():
    return nas.create_space("nb201")


def score(arch) -> EvalResult:
    """A deterministic stand-in for an evaluator, for any space."""
    return EvalResult(arch, {"accuracy": int(arch.arch_id[:4], 16) / 655.36}, {}, Provenance("test-score"))


def run(strategy, rounds: int = 4, batch: int = 5) -> list:
    asked = []
    for _ in range(rounds):
        archs = strategy.ask(batch)
        asked += archs
        strategy.tell([score(a) for a in archs])
    return asked


@pytest.mark.parametrize("name", nas.STRATEGIES.names())
def test_strategy_contract(space, name):
    strategy = nas.create_strategy(name, space, OBJECTIVES, seed=3)
    asked = run(strategy)
    assert len(asked) == 20 and all(space.validate(a) is None for a in asked)
    again = run(nas.create_strategy(name, space, OBJECTIVES, seed=3))
    assert again == asked, "the same seed gives the same search"


@pytest.mark.parametrize("name", nas.STRATEGIES.names())
def test_replaying_its_calls_with_stored_results_rebuilds_a_strategy(space, name):
    """What a resumed search does: a new strategy of the same seed, given the same calls with the results as the
    store gives them back (through JSON), proposes what the first one proposes."""
    live, replayed = (nas.create_strategy(name, space, OBJECTIVES, seed=4) for _ in range(2))
    for _ in range(4):
        archs = live.ask(5)
        assert replayed.ask(5) == archs
        results = [score(a) for a in archs]
        live.tell(results)
        replayed.tell([EvalResult.from_dict(json.loads(json.dumps(r.to_dict()))) for r in results])
    assert replayed.ask(3) == live.ask(3)


def test_pruned_results_are_learned_from(space):
    """A result stopped early (pruned) carries the figures of its lower fidelity: strategies learn from it."""
    strategy = nas.create_strategy("evolution", space, OBJECTIVES, seed=0, population=4, tournament=2)
    archs = strategy.ask(4)
    strategy.tell([dataclasses.replace(score(a), status=Status.PRUNED) for a in archs])
    assert len(strategy.population) == 4 and all(r.measured and not r.ok for r in strategy.population)


def test_unknown_strategy_and_option(space):
    with pytest.raises(nas.UnknownNameError, match="unknown strategy 'nope'; registered: .*random"):
        nas.create_strategy("nope", space, OBJECTIVES)
    with pytest.raises(nas.InvalidOptionError, match="strategy 'random': population: unknown key; accepted: none"):
        nas.create_strategy("random", space, OBJECTIVES, population=3)
    with pytest.raises(nas.InvalidOptionError, match="strategy 'evolution': tournament=5 exceeds population=3"):
        nas.create_strategy("evolution", space, OBJECTIVES, population=3)
    with pytest.raises(nas.InvalidOptionError, match="at least one objective"):
        nas.create_strategy("random", space, [])


class Recorder(nas.RandomStrategy):
    """Random search that records what it is told."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.told: list[EvalResult] = []

    def tell(self, results):
        self.told += results


def test_deduplicated_never_repeats_and_answers_every_proposal():
    space = nas.create_space("resnet20-pooling", num_downsample=1)  # 27 architectures
    inner = Recorder(space, OBJECTIVES, seed=0)
    strategy = Deduplicated(inner)
    asked = run(strategy, rounds=10, batch=4)
    assert len(asked) == len(set(asked)) == 27  # every architecture once, then the space is exhausted
    assert strategy.ask(4) == [] and strategy.seen == 27
    proposed = Counter(r.arch for r in inner.told)
    assert set(proposed) == set(asked) and sum(proposed.values()) > 27  # duplicates were answered too
    duplicates = [r for r in inner.told if "duplicate_of" in r.provenance.details]
    assert all(r.metrics == score(r.arch).metrics for r in duplicates)


def test_deduplicated_by_canonical_class(space):
    strategy = Deduplicated(nas.RandomStrategy(space, OBJECTIVES, seed=1), key="canonical")
    asked = run(strategy, rounds=20, batch=25)
    classes = [space.canonical(a) for a in asked]
    assert len(set(classes)) == len(classes) == 500
    with pytest.raises(nas.InvalidOptionError, match="choose one of arch_id, canonical"):
        Deduplicated(nas.RandomStrategy(space, OBJECTIVES), key="name")


def test_duplicates_of_pending_architectures_get_the_result_when_it_arrives():
    space = nas.create_space("resnet20-pooling", num_downsample=1, ops=["max"])  # 9 architectures
    inner = Recorder(space, OBJECTIVES, seed=2)
    strategy = Deduplicated(inner)
    pending = strategy.ask(9)
    assert len(set(pending)) == 9 and not inner.told
    strategy.ask(5)  # everything is pending: duplicates wait
    strategy.tell([score(a) for a in pending])
    assert len(inner.told) > 9 and {r.arch for r in inner.told} == set(pending)


def test_constrained_evaluates_only_feasible_architectures(space):
    bound = Objective.parse("min:macs<=60e6")
    inner = Recorder(space, OBJECTIVES, seed=6)
    strategy = Constrained(inner, [bound])
    asked = run(strategy, rounds=5, batch=6)
    assert len(asked) == 30 and all(space.cost(a).macs <= 60e6 for a in asked)
    rejected = [r for r in inner.told if r.status is Status.FAILED]
    assert rejected and all("macs=" in r.reason and "6e+07" in r.reason for r in rejected)
    assert all(space.cost(r.arch).macs > 60e6 for r in rejected)


def test_constrained_with_an_impossible_bound_runs_dry(space):
    strategy = Constrained(
        nas.RandomStrategy(space, OBJECTIVES, seed=0), [Objective.parse("min:params<=10")], max_rounds=3
    )
    assert strategy.ask(5) == []


def test_constraints_need_bounds_and_known_costs(space):
    inner = nas.RandomStrategy(space, OBJECTIVES)
    with pytest.raises(nas.InvalidOptionError, match="need bounds"):
        Constrained(inner, [Objective.parse("min:macs")])
    with pytest.raises(nas.InvalidOptionError, match="gives only macs, params"):
        Constrained(inner, [Objective.parse("min:latency:pixel3<=3")]).ask(1)


def test_wrappers_compose(space):
    strategy = Deduplicated(
        Constrained(nas.RandomStrategy(space, OBJECTIVES, seed=7), [Objective.parse("min:macs<=40e6")])
    )
    asked = run(strategy, rounds=5, batch=10)
    assert len(set(asked)) == len(asked) == 50 and all(space.cost(a).macs <= 40e6 for a in asked)


def test_objective_parsing():
    assert Objective.parse("accuracy").direction is None  # open: the evaluator's declaration decides
    assert Objective.parse("latency:fpga") == Objective("latency:fpga")
    assert Objective.parse("max:accuracy").direction is nas.Direction.MAX
    assert Objective.parse("min:latency:fpga").direction is nas.Direction.MIN
    assert Objective.parse("min:error").name == "error" and Objective.parse("max:score").direction is nas.Direction.MAX
    assert Objective.parse("max:accuracy>=90").feasible(91) and not Objective.parse("max:accuracy>=90").feasible(89)
    with pytest.raises(nas.InvalidOptionError, match="not a number"):
        Objective.parse("min:macs<=lots")


def test_eval_result_round_trip_and_values(space):
    arch = space.sample(0)
    result = EvalResult(arch, {"accuracy": 91.5}, {"macs": 3, "latency_ms:pixel3": 2.5}, Provenance("t", seed=1))
    assert EvalResult.from_dict(result.to_dict()) == result
    assert pickle.loads(pickle.dumps(result)) == result
    assert result.value("latency:pixel3") == 2.5 and result.value("macs") == 3
    failed = EvalResult.failed(arch, "diverged", Provenance("t"))
    assert not failed.ok and failed.value("accuracy") != failed.value("accuracy")  # NaN


def test_an_open_direction_is_resolved_from_the_declared_figures():
    figures = [nas.Figure("analog_accuracy", nas.Direction.MAX), nas.Figure("macs", nas.Direction.MIN)]
    objectives = [Objective.parse("analog_accuracy"), Objective.parse("max:macs"), Objective.parse("macs<=5")]
    resolved = nas.resolve_objectives(objectives[:2], figures)
    assert [o.direction for o in resolved] == [nas.Direction.MAX, nas.Direction.MAX]  # an explicit one is kept
    assert nas.resolve_objectives(objectives[2:], figures)[0].feasible(4)
    with pytest.raises(nas.InvalidOptionError, match="does not produce analog_acc; it produces analog_accuracy, macs"):
        nas.resolve_objectives([Objective.parse("analog_acc")], figures)
    with pytest.raises(nas.InvalidOptionError, match="analog_accuracy has none: write max:NAME or min:NAME"):
        nas.RandomStrategy(nas.create_space("nb201"), objectives[:1], seed=0)
    with pytest.raises(nas.InvalidOptionError, match="has no direction"):
        objectives[0].sign()


def test_objective_directions_as_text():
    assert Objective("accuracy", "max") == Objective.parse("max:accuracy") and Objective("macs", "min").sign() == -1.0
    with pytest.raises(nas.InvalidOptionError, match="direction 'up' is not one of max, min"):
        Objective("accuracy", "up")
