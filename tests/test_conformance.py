"""One suite for every registered space: a new space is tested the moment it is registered. Spaces of networks are
checked on several tasks, and their networks and costs too."""

from __future__ import annotations

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
