"""One suite for every registered space and every registered evaluator: a new one is tested the moment it is
registered. Spaces of networks are checked on several tasks, and their networks and costs too."""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytest
import torch

import nas

#: Tasks each space is checked on: its default plus a small grayscale one and an odd one where the space allows.
TASKS = [{}, {"input_shape": (1, 28, 28), "num_classes": 10}, {"input_shape": (3, 8, 8), "num_classes": 2}]
SAMPLES = 6
#: Options of the spaces that are given as data (they have no default).
OPTIONS = {"categorical": {"dimensions": {"op": ["conv", "pool", "skip"], "width": [16, 32], "deep": [True, False]}}}


def spaces():
    for name in nas.SPACES.names():
        for task in TASKS if issubclass(nas.SPACES.get(name), nas.NetworkSpace) else [{}]:
            yield pytest.param((name, task), id=f"{name}-{'x'.join(map(str, task.get('input_shape', ['default'])))}")


@pytest.fixture(params=list(spaces()))
def space(request):
    name, task = request.param
    try:
        return nas.create_space(name, **OPTIONS.get(name, {}), **task)
    except nas.InvalidOptionError as error:  # e.g. nb201 needs H, W divisible by 4
        pytest.skip(str(error))


@pytest.fixture
def networks(space):
    if not isinstance(space, nas.NetworkSpace):
        pytest.skip(f"{space.name} builds no networks")
    return space


def test_cost_equals_the_built_module(networks, measured_cost):
    for arch in networks.sample_many(SAMPLES, 0):
        assert networks.cost(arch) == measured_cost(networks, arch), arch


def test_a_network_space_declares_its_costs(networks):
    declared = {f.name: f for f in networks.figures()}
    assert set(declared) == set(networks.cost(networks.sample(0)).to_dict())
    assert all(f.direction is nas.Direction.MIN for f in declared.values())


def test_forward_backward_on_a_batch(networks):
    space = networks
    model = space.build(space.sample(1)).train()
    logits = model(torch.randn(4, *space.input_shape))
    logits.logsumexp(1).mean().backward()
    assert logits.shape == (4, space.num_classes)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_sampling_is_seeded(space):
    assert space.sample_many(8, 42) == space.sample_many(8, 42)
    assert space.sample(np.random.default_rng(5)) == space.sample(5)
    assert len(set(space.sample_many(20, 0))) > 1


def test_round_trip_and_stable_id(space):
    for arch in space.sample_many(SAMPLES, 2):
        space.validate(arch)
        again = nas.Architecture.from_dict(arch.to_dict())
        assert again == arch and again.arch_id == arch.arch_id and hash(again) == hash(arch)
        assert len(arch.arch_id) == 12 and arch.space == space.name and arch.version == space.version


def test_canonical_is_idempotent_and_valid(space):
    for arch in space.sample_many(SAMPLES, 3):
        canon = space.canonical(arch)
        space.validate(canon)
        assert space.canonical(canon) == canon


def test_invalid_architectures_are_rejected_by_name(space):
    arch = space.sample(4)
    dim = space.dimensions()[-1]
    bad = nas.Architecture(space.name, space.version, {**arch.choices, dim.name: "no-such-option"})
    with pytest.raises(nas.InvalidArchitectureError, match=f"{dim.name}='no-such-option' is not an option"):
        space.validate(bad)
    check = space.build if isinstance(space, nas.NetworkSpace) else space.validate
    with pytest.raises(nas.InvalidArchitectureError, match=dim.name):
        check(bad)
    missing = nas.Architecture(space.name, space.version, {k: v for k, v in arch.choices.items() if k != dim.name})
    with pytest.raises(nas.InvalidArchitectureError, match=f"missing choices \\['{dim.name}'\\]"):
        (space.cost if isinstance(space, nas.NetworkSpace) else space.validate)(missing)
    with pytest.raises(nas.InvalidArchitectureError, match="version"):
        space.validate(nas.Architecture(space.name, "0", arch.choices))
    with pytest.raises(nas.InvalidArchitectureError, match="belongs to space"):
        space.validate(nas.Architecture("other", space.version, arch.choices))


def test_mutation_draws_a_neighbour(space):
    for arch in space.sample_many(3, 6):
        neighbours = list(space.neighbours(arch))
        assert len(set(neighbours)) == len(neighbours) == sum(len(d.options) - 1 for d in space.active_dimensions(arch))
        assert arch not in neighbours
        for n in neighbours:
            space.validate(n)
            changed = [d.name for d in space.active_dimensions(arch) if n.choices[d.name] != arch.choices[d.name]]
            assert changed, "a neighbour changes an active dimension"
        children = {space.mutate(arch, seed) for seed in range(10)}
        assert children <= set(neighbours) and len(children) > 1
        assert space.mutate(arch, 1) == space.mutate(arch, 1)


def test_describes_itself(space):
    assert space.description and isinstance(space.version, str)
    assert space.size() >= 2 and all(len(d.options) >= 1 for d in space.dimensions())
    assert [d.name for d in space.dimensions()] == sorted(
        space.sample(0).choices, key=[d.name for d in space.dimensions()].index
    )


# -- every registered evaluator --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cheap:
    """How to run an evaluator in seconds: its space, its data (tables need NAS_DATA_DIR) and options."""

    space: str = "resnet20-pooling"
    data: nas.DataSpec = field(default_factory=lambda: nas.DataSpec("digits", options={"train_size": 200}))
    options: dict[str, Any] = field(default_factory=dict)
    tables: bool = False


#: The cheap settings of the evaluators this package registers; one registered later runs with the defaults.
CHEAP = {
    "train": Cheap(options={"epochs": 1, "fraction": 0.2}),
    "supernet": Cheap(options={"epochs": 0.2, "eval_examples": 20, "recalibration_examples": 20}),
    "zero-cost": Cheap("macro-cnn", options={"proxies": ["synflow", "nwot", "macs"], "batch_size": 8}),
    "nb201-table": Cheap("nb201", nas.DataSpec("cifar10"), {"devices": ["pixel3"]}, tables=True),
    "nb201-published-proxies": Cheap("nb201", nas.DataSpec("cifar10"), tables=True),
    "table": Cheap(
        "nb201",
        nas.DataSpec("cifar10"),
        {"path": "{data_dir}/nb201_hp12/nb201_hp12_accuracies.csv", "key": "arch_str", "key_format": "nb201-string"}
        | {"metrics": {"cifar10_test_acc_12ep": "max"}},
        tables=True,
    ),
    "predictor": Cheap(
        "nb201",
        nas.DataSpec("cifar10"),
        {"trusted": "nb201-table", "trusted_options": {"devices": []}, "train_size": 10},
        tables=True,
    ),
}


#: The evaluators' cheap options (``{data_dir}`` left unfilled where they are checked, not used).
CHEAP_OPTIONS = {name: cheap.options for name, cheap in CHEAP.items()}


@pytest.fixture(scope="module", params=nas.EVALUATORS.names())
def evaluated(request, tmp_path_factory):
    """A registered evaluator built in a context (prepared, if it `Prepares`), and its results for three
    architectures with a foreign one in the middle."""
    name = request.param
    cheap = CHEAP.get(name, Cheap())
    data, options = cheap.data, cheap.options
    if cheap.tables:
        data_dir = str(request.getfixturevalue("data_dir"))
        data = replace(data, data_dir=data_dir)
        options = {k: v.format(data_dir=data_dir) if isinstance(v, str) else v for k, v in options.items()}
    context = nas.create_context(name, cheap.space, data, evaluator_options=options)
    evaluator = nas.create_evaluator(name, context, **options)
    if isinstance(evaluator, nas.Prepares):
        evaluator.prepare(tmp_path_factory.mktemp(name))
    archs = evaluator.archs()[:2] if isinstance(evaluator, nas.TabularLookup) else context.space.sample_many(2, 0)
    foreign = nas.Architecture("no-such-space", "1", {"x": 1})
    with torch.random.fork_rng(devices=[]):
        results = evaluator.evaluate([archs[0], foreign, archs[1]])
    return name, context, evaluator, [archs[0], foreign, archs[1]], results


def test_the_registry_names_the_class_and_it_declares_its_options(evaluated):
    name, _, evaluator, _, _ = evaluated
    cls = nas.EVALUATORS.get(name)
    assert cls.name == name and type(evaluator) is cls
    assert issubclass(cls.Options, nas.Options)
    assert isinstance(nas.EVALUATORS.options(name, CHEAP_OPTIONS.get(name, {})), cls.Options)


def test_results_come_in_order_one_per_architecture(evaluated):
    _, _, _, archs, results = evaluated
    assert [r.arch for r in results] == archs


def test_an_architecture_outside_the_space_is_a_failed_result_with_a_reason(evaluated):
    *_, results = evaluated
    assert results[1].status is nas.Status.FAILED and results[1].reason and not results[1].metrics


def test_every_ok_result_carries_each_declared_figure(evaluated):
    name, _, evaluator, _, results = evaluated
    figures = evaluator.figures()
    assert figures, f"{name} declares no figures"
    ok = [r for r in results if r.ok]
    assert len(ok) == 2, [r.reason for r in results]
    for result in ok:
        names = [f.name for f in figures]
        assert all(not math.isnan(result.value(f)) for f in names), (names, result.metrics, result.costs)


def test_provenance_names_the_evaluator_and_results_round_trip(evaluated):
    name, *_, results = evaluated
    for result in results:
        assert result.provenance.evaluator == name
        assert nas.EvalResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_the_options_model_refuses_an_unknown_key_by_name(evaluated):
    name, context, *_ = evaluated
    with pytest.raises(nas.InvalidOptionError, match=f"evaluator '{name}': no_such_option: unknown key; accepted:"):
        nas.create_evaluator(name, context, **CHEAP_OPTIONS.get(name, {}), no_such_option=1)


def test_the_context_pickles_for_workers(evaluated):
    _, context, *_ = evaluated
    again = pickle.loads(pickle.dumps(context))
    assert again.space.name == context.space.name and again.data == context.data


def test_an_evaluator_that_reads_data_declares_its_options_and_task(evaluated):
    name, context, _, _, _ = evaluated
    cls = nas.EVALUATORS.get(name)
    if not isinstance(cls, nas.ReadsData):
        pytest.skip(f"{name} reads no data")
    options = nas.EVALUATORS.options(name, CHEAP_OPTIONS.get(name, {}))
    assert issubclass(cls.data_options(options), nas.Options)
    task = cls.data_task(context.data, options)
    assert task is None or (isinstance(context.space, nas.NetworkSpace) and context.space.task == task)


# -- every registered component --------------------------------------------------------------------------------------
def components():
    for registry in (nas.SPACES, nas.EVALUATORS, nas.STRATEGIES, nas.PREDICTORS):
        for name in registry.names():
            yield pytest.param(registry, name, id=f"{registry.kind}-{name}")


@pytest.mark.parametrize(("registry", "name"), list(components()))
def test_a_component_is_named_by_its_registry_and_its_options_model_refuses_unknown_keys(registry, name):
    cls = registry.get(name)
    assert cls.name == name
    given = {nas.SPACES: OPTIONS, nas.EVALUATORS: CHEAP_OPTIONS}.get(registry, {}).get(name, {})
    assert issubclass(cls.Options, nas.Options) and isinstance(registry.options(name, given), cls.Options)
    with pytest.raises(nas.InvalidOptionError, match=f"{registry.kind} '{name}': no_such_option: unknown key"):
        registry.options(name, {**given, "no_such_option": 1})
