"""MacroCNNSpace: exact analytic cost, forward shape, validation, options, canonical architectures and size."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch

import nas
from nas import Architecture, InvalidArchitectureError, InvalidOptionError, SearchSpace

SMALL = {"base_widths": (4, 8), "width_multipliers": (0.5, 1.0), "depths": (1, 2), "kernel_sizes": (3, 5)}


def space_of(**options: Any) -> SearchSpace:
    return nas.create_space("macro-cnn", **{"input_shape": (1, 28, 28), "num_classes": 10, **options})


def test_cost_is_exact_on_random_samples(measured_cost) -> None:
    space = space_of()
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = space.sample(rng)
        assert space.cost(arch) == measured_cost(space, arch), arch.choices


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 8, 8), (1, 7, 7), (3, 30, 30), (1, 1, 1)])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"block": "conv"},
        {"expand_ratios": (1, 6), "stem_width": 8, "base_widths": (8, 12, 24, 40), "width_multipliers": (0.25, 1.5)},
        {"block": "conv", "kernel_sizes": (1, 3, 9), "depths": (2, 4)},
    ],
)
def test_cost_is_exact_for_shapes_and_options(
    measured_cost, shape: tuple[int, int, int], options: dict[str, Any]
) -> None:
    space = space_of(input_shape=shape, **options)
    rng = np.random.default_rng(1)
    for _ in range(3):
        arch = space.sample(rng)
        assert space.cost(arch) == measured_cost(space, arch), arch.choices


@pytest.mark.parametrize("block", ["mbconv", "conv"])
def test_forward_returns_logits(block: str) -> None:
    space = space_of(input_shape=(3, 30, 30), num_classes=7, block=block)
    module = space.build(space.sample(2))
    assert module(torch.zeros(2, 3, 30, 30)).shape == (2, 7)


def test_dimension_names() -> None:
    names = [d.name for d in space_of().dimensions()]
    assert names[:4] == ["stage1_width", "stage1_depth", "stage1_block1_kernel", "stage1_block1_expand"]
    assert len(names) == 3 * (2 + 3 * 2)
    assert "stage3_block3_expand" in names
    assert not any(name.endswith("_expand") for name in (d.name for d in space_of(block="conv").dimensions()))


@pytest.mark.parametrize(
    ("block", "name", "value"),
    [("mbconv", "stage2_block1_kernel", 4), ("mbconv", "stage1_width", 2.0), ("conv", "stage1_block1_expand", 3)],
)
def test_validate_names_the_bad_choice(block: str, name: str, value: Any) -> None:
    space = space_of(block=block)
    arch = Architecture(space.name, space.version, {**space.sample(0).choices, name: value})
    with pytest.raises(InvalidArchitectureError, match=name):
        space.validate(arch)
    with pytest.raises(InvalidArchitectureError, match=name):
        space.build(arch)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"block": "resnet"}, "block"),
        ({"stem_width": 0}, "stem_width"),
        ({"base_widths": ()}, "base_widths"),
        ({"width_multipliers": (0.5, -1.0)}, "width_multipliers"),
        ({"base_widths": (2,), "width_multipliers": (0.5, 0.6)}, "width_multipliers"),
        ({"depths": (1, 1)}, "depths"),
        ({"kernel_sizes": (3, 4)}, "kernel_sizes"),
        ({"expand_ratios": (0, 2)}, "expand_ratios"),
        ({"depth": 3}, "depth"),
    ],
)
def test_bad_options_are_rejected(options: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidOptionError, match=named):
        space_of(**options)


def test_canonical_resets_inactive_blocks() -> None:
    space = space_of()
    inactive = {"stage1_block2_kernel": 7, "stage1_block3_kernel": 5, "stage1_block3_expand": 6}
    shallow = space.arch({**space.sample(3).choices, "stage1_depth": 1, **inactive})
    canon = space.canonical(shallow)
    assert {name: canon.choices[name] for name in inactive} == dict.fromkeys(inactive, 3)
    assert canon.choices["stage1_block1_kernel"] == shallow.choices["stage1_block1_kernel"]
    assert space.canonical(canon) == canon
    assert space.cost(canon) == space.cost(shallow)
    assert space.canonical(space.arch({**shallow.choices, "stage1_block2_kernel": 5})) == canon


def test_samples_are_canonical_and_seeded() -> None:
    space = space_of()
    numpy_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    first = [space.sample(np.random.default_rng(4)) for _ in range(2)]
    assert first[0] == first[1] == space.sample(4)
    assert [space.sample(s) for s in range(10)] == [space.sample(s) for s in range(10)]
    assert all(space.canonical(a) == a for a in (space.sample(s) for s in range(10)))
    assert (np.random.get_state()[1] == numpy_state).all() and torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize("options", [{**SMALL, "expand_ratios": (1, 2)}, {**SMALL, "block": "conv"}])
def test_size_counts_distinct_networks(options: dict[str, Any]) -> None:
    space = space_of(**options)
    dims = space.dimensions()
    canonical = {
        space.canonical(Architecture(space.name, space.version, dict(zip((d.name for d in dims), values, strict=True))))
        for values in itertools.product(*(d.options for d in dims))
    }
    assert space.size() == len(canonical) < np.prod([len(d.options) for d in dims])
    assert set(space.enumerate()) == canonical
    assert sum(1 for _ in space.enumerate()) == space.size()


def test_default_size() -> None:
    assert space_of().size() == (3 * (9 + 9**2 + 9**3)) ** 3
    assert space_of(block="conv").size() == (3 * (3 + 3**2 + 3**3)) ** 3
