"""ResNet20PoolingSpace: exact analytic cost, forward shape, downsampling layout, validation and options."""

from __future__ import annotations

from math import comb
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import nas
from nas import Architecture, InvalidArchitectureError, InvalidOptionError, SearchSpace


def space_of(**options: Any) -> SearchSpace:
    return nas.create_space("resnet20-pooling", **{"input_shape": (1, 28, 28), "num_classes": 10, **options})


def test_cost_is_exact_for_every_default_architecture(measured_cost) -> None:
    space = space_of()
    archs = list(space.enumerate())
    assert len(archs) == space.size() == 324
    for arch in archs:
        assert space.cost(arch) == measured_cost(space, arch), arch.choices


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 8, 8), (1, 7, 7), (3, 30, 30), (1, 1, 1)])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_downsample": 1, "ops": ("avg",)},
        {"num_downsample": 4, "base_width": 4, "ops": ("conv", "max")},
        {"num_downsample": 9, "base_width": 1},
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


def test_forward_returns_logits() -> None:
    space = space_of(input_shape=(3, 9, 11), num_classes=7, num_downsample=3)
    assert space.build(space.sample(0))(torch.zeros(2, 3, 9, 11)).shape == (2, 7)


def test_downsampling_layers_sit_where_the_architecture_says() -> None:
    space = space_of()
    arch = space.arch({"downsample_at": [0, 5], "downsample_op_1": "max", "downsample_op_2": "conv"})
    module = space.build(arch)
    blocks = list(module.blocks)
    assert isinstance(blocks[0][0], nn.MaxPool2d)
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in module.modules() if m is not blocks[0][0])
    strided = [
        i for i, block in enumerate(blocks) if any(getattr(m, "stride", None) == (2, 2) for m in block.modules())
    ]
    assert strided == [5]
    assert module.classifier.in_features == 64


def test_dimensions_and_size() -> None:
    dims = space_of().dimensions()
    assert [d.name for d in dims] == ["downsample_at", "downsample_op_1", "downsample_op_2"]
    assert dims[0].options[:2] == ((0, 1), (0, 2)) and len(dims[0].options) == 36
    assert space_of(num_downsample=3, ops=["max", "conv"]).size() == comb(9, 3) * 2**3


@pytest.mark.parametrize(
    ("name", "value"),
    [("downsample_at", (2, 2)), ("downsample_at", (0, 9)), ("downsample_op_2", "stride"), ("downsample_op_3", "max")],
)
def test_validate_names_the_bad_choice(name: str, value: Any) -> None:
    space = space_of()
    arch = Architecture(space.name, space.version, {**space.sample(0).choices, name: value})
    with pytest.raises(InvalidArchitectureError, match=name):
        space.validate(arch)
    with pytest.raises(InvalidArchitectureError, match=name):
        space.cost(arch)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"num_downsample": 0}, "num_downsample"),
        ({"num_downsample": 10}, "num_downsample"),
        ({"num_downsample": 2.0}, "num_downsample"),
        ({"base_width": 0}, "base_width"),
        ({"ops": ("max", "min")}, "ops"),
        ({"ops": ()}, "ops"),
        ({"ops": ("max", "max")}, "ops"),
        ({"ops": "max"}, "ops"),
        ({"pooling": "max"}, "pooling"),
    ],
)
def test_bad_options_are_rejected(options: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidOptionError, match=named):
        space_of(**options)


def test_sample_is_seeded() -> None:
    space = space_of()
    numpy_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    assert [space.sample(s) for s in range(10)] == [space.sample(s) for s in range(10)]
    assert space.sample(np.random.default_rng(5)) == space.sample(5)
    assert (np.random.get_state()[1] == numpy_state).all() and torch.equal(torch.get_rng_state(), torch_state)
