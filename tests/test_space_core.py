"""Architecture, Choice, the registry and the generic SearchSpace behaviour, on a small user-defined space."""

from __future__ import annotations

import pickle
from typing import ClassVar

import pydantic
import pytest
import torch
from torch import nn

import nas
from nas import Architecture, Choice, Cost, NetworkSpace
from nas.core.cost import conv2d, conv_out, linear


class TinyOptions(nas.NetworkOptions):
    """Its options: the task, and the widths to choose from."""

    input_shape: tuple[int, int, int] = pydantic.Field(default=(1, 8, 8), strict=False)
    num_classes: int = 3
    widths: tuple[int, ...] = pydantic.Field(default=(4, 8), strict=False)


class TinySpace(NetworkSpace):
    """A user-defined space: one conv of a chosen width and kernel, then a classifier."""

    version: ClassVar[str] = "1"
    description: ClassVar[str] = "one conv layer"
    Options = TinyOptions

    def __init__(self, options=None):
        options = options or TinyOptions()
        super().__init__(options)
        self._dims = (Choice("width", options.widths), Choice("kernel", (1, 3)))

    def dimensions(self):
        return self._dims

    def build(self, arch):
        self.validate(arch)
        c, k = arch.choices["width"], arch.choices["kernel"]
        return nn.Sequential(
            nn.Conv2d(self.input_shape[0], c, k, stride=2), nn.Flatten(), nn.LazyLinear(self.num_classes)
        )

    def cost(self, arch):
        self.validate(arch)
        c, k = arch.choices["width"], arch.choices["kernel"]
        h, w = (conv_out(s, k, 2) for s in self.input_shape[1:])
        return conv2d(self.input_shape[0], c, k, (h, w), bias=True) + linear(c * h * w, self.num_classes)


nas.register_space("tiny-test")(TinySpace)  # the registry names it


def test_architecture_round_trip_and_identity():
    arch = Architecture("s", "1", {"b": [1, 2], "a": "x"})
    assert arch.to_dict() == {"space": "s", "version": "1", "choices": {"a": "x", "b": [1, 2]}}
    assert Architecture.from_dict(arch.to_dict()) == arch
    assert hash(Architecture("s", "1", {"a": "x", "b": (1, 2)})) == hash(arch)
    assert arch.to_json() == '{"choices":{"a":"x","b":[1,2]},"space":"s","version":"1"}'
    # The id is a hash of the canonical JSON: stable across runs and machines (pinned).
    assert arch.arch_id == "ef26125b8c8d"
    assert Architecture("s", "2", {"b": [1, 2], "a": "x"}).arch_id != arch.arch_id


def test_architecture_pickles():
    arch = Architecture("s", "1", {"b": [1, 2], "a": "x"})
    again = pickle.loads(pickle.dumps(arch))
    assert again == arch and again.arch_id == arch.arch_id and again.choices["b"] == (1, 2)


def test_architecture_is_frozen():
    arch = Architecture("s", "1", {"a": 1})
    with pytest.raises(TypeError):
        arch.choices["a"] = 2  # type: ignore[index]
    with pytest.raises(AttributeError):
        arch.space = "t"  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"space": "s", "choices": {}}, "exactly the keys"),
        ({"space": "s", "version": "1", "choices": 3}, "mapping"),
        ({"space": "s", "version": "1", "choices": {"a": {"x": 1}}}, "JSON scalar"),
    ],
)
def test_from_dict_rejects_malformed_input(bad, words):
    with pytest.raises(nas.InvalidArchitectureError, match=words):
        Architecture.from_dict(bad)


def test_registry_creates_user_space_and_checks_options():
    space = nas.create_space("tiny-test", input_shape=(1, 9, 9), num_classes=3, widths=[2, 5])
    assert isinstance(space, TinySpace) and space.dimensions()[0].options == (2, 5)
    assert TinySpace.name == space.name == "tiny-test"  # the registry's name
    with pytest.raises(
        nas.InvalidOptionError,
        match="search space 'tiny-test': depth: unknown key; accepted: input_shape, num_classes, widths",
    ):
        nas.create_space("tiny-test", depth=3)
    with pytest.raises(nas.UnknownNameError, match="unknown search space 'nope'; registered: .*nb201.*tiny-test"):
        nas.create_space("nope")
    assert "tiny-test" in nas.list_spaces()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((3, 32), "input_shape: got (3, 32); an input shape is three positive integers (channels, height, width)"),
        ("abc", "input_shape: got 'abc'; an input shape is three positive integers"),
        ((0, 8, 8), "input_shape.0: got 0; Input should be greater than 0"),
        ((3, "8", 8), "input_shape.1: got '8'; Input should be a valid integer"),
    ],
)
def test_bad_task_is_rejected(shape, message):
    with pytest.raises(nas.InvalidOptionError) as info:
        nas.create_space("nb201", input_shape=shape)
    assert str(info.value).startswith(f"search space 'nb201': {message}")


def test_generic_operations():
    space = TinySpace()
    arch = space.arch({"width": 4, "kernel": 3})
    assert space.size() == 4 and len(list(space.enumerate())) == 4
    assert {a.choices["width"] for a in space.neighbours(arch)} == {4, 8}
    assert len(list(space.neighbours(arch))) == 2
    mutated = space.mutate(arch, 0)
    assert sum(mutated.choices[k] != arch.choices[k] for k in arch.choices) == 1
    assert space.sample_many(5, 3) == space.sample_many(5, 3)
    with pytest.raises(nas.InvalidArchitectureError, match=r"kernel=5 is not an option; choose one of \[1, 3\]"):
        space.arch({"width": 4, "kernel": 5})
    with pytest.raises(nas.InvalidArchitectureError, match=r"missing choices \['kernel'\]"):
        space.arch({"width": 4})


def test_generic_operations_do_not_touch_global_rng():
    torch.manual_seed(0)
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    before = (random.random(), np.random.rand(), torch.rand(1).item())
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    space = TinySpace()
    space.sample_many(10, 1)
    space.mutate(space.sample(2), 3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == before


def test_cost_addition():
    assert Cost(1, 2) + Cost(3, 4) == Cost(4, 6)
    assert Cost(1, 2) * 3 == Cost(3, 6)
    assert conv_out(7, 2, 2, ceil_mode=True) == 4 and conv_out(32, 3, 2, 1) == 16
