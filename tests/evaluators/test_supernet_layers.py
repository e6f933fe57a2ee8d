"""Dynamic supernet layers: a configuration's tensors are views of the largest (centre kernels, width slices), and
BatchNorm statistics follow the width."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from evaluators.supernet import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear, centre
from nas import InvalidOptionError


@pytest.fixture(autouse=True)
def _seeded():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def test_the_kernel_is_the_centre_of_the_largest_and_a_width_a_slice():
    conv = DynamicConv2d(16, 32, 7)
    weight = conv.weight_for(8, 24, 3)
    assert weight.shape == (24, 8, 3, 3)
    assert torch.equal(weight, conv.weight[:24, :8, 2:5, 2:5])
    assert weight.data_ptr() != conv.weight.data_ptr() or weight._base is conv.weight  # a view, not a copy
    assert centre(7, 5) == slice(1, 6)


def test_the_learned_kernel_transformation_starts_as_the_centre_and_is_trained():
    conv = DynamicConv2d(4, 4, 7, kernel_transform=True)
    assert set(conv.transforms) == {"5", "3", "1"}
    torch.testing.assert_close(conv.weight_for(4, 4, 3), conv.weight[:, :, 2:5, 2:5])
    conv.weight_for(4, 4, 3).sum().backward()
    assert conv.transforms["3"].grad is not None and conv.transforms["5"].grad is not None
    assert conv.weight.grad is not None


def test_a_depthwise_convolution_keeps_its_width():
    conv = DynamicConv2d(32, 32, 5, depthwise=True)
    assert conv.weight_for(12, 12, 3).shape == (12, 1, 3, 3)
    with pytest.raises(InvalidOptionError, match="keeps its width"):
        DynamicConv2d(8, 16, 3, depthwise=True)


def test_batchnorm_training_updates_only_the_channels_used():
    bn = DynamicBatchNorm2d(8)
    state = bn.tensors(4)
    F.batch_norm(torch.randn(16, 4, 3, 3) + 5, state["running_mean"], state["running_var"], state["weight"],
                 state["bias"], True, 0.1)  # fmt: skip
    assert (bn.running_mean[:4] != 0).all() and (bn.running_mean[4:] == 0).all()


def test_the_linear_layer_takes_an_elastic_input_width():
    linear = DynamicLinear(64, 10)
    state = linear.tensors(32)
    assert state["weight"].shape == (10, 32) and state["bias"] is linear.bias


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: DynamicConv2d(8, 8, 5).weight_for(8, 8, 7), "not centred in the largest kernel 5"),
        (lambda: DynamicConv2d(8, 8, 5).weight_for(8, 8, 4), "odd size"),
        (lambda: DynamicConv2d(8, 8, 5).weight_for(9, 8, 3), "input width 9 is out of range"),
        (lambda: DynamicBatchNorm2d(8).tensors(9), "BatchNorm width 9 is out of range"),
        (lambda: DynamicLinear(8, 2).tensors(0), "input width 0 is out of range"),
    ],
)
def test_a_configuration_the_supernet_does_not_hold_is_named(call, message):
    with pytest.raises(InvalidOptionError, match=message):
        call()
