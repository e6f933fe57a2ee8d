"""Dynamic supernet layers: a configuration's forward pass equals its extracted static layer, and extraction copies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evaluators.supernet import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear, centre
from nas import InvalidOptionError


@pytest.fixture(autouse=True)
def _seeded():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


@pytest.mark.parametrize(("in_c", "out_c", "kernel", "stride"), [(8, 24, 3, 1), (16, 32, 7, 2), (3, 5, 5, 1)])
def test_a_convolution_configuration_equals_its_extracted_layer(in_c, out_c, kernel, stride):
    conv = DynamicConv2d(16, 32, 7, stride=stride)
    x = torch.randn(2, in_c, 9, 9)
    static = conv.extract(in_c, out_c, kernel)
    assert isinstance(static, nn.Conv2d) and static.weight.shape == (out_c, in_c, kernel, kernel)
    torch.testing.assert_close(conv(x, out_channels=out_c, kernel=kernel), static(x))


def test_the_kernel_is_the_centre_of_the_largest():
    conv = DynamicConv2d(4, 4, 7)
    assert torch.equal(conv.weight_for(4, 4, 3), conv.weight[:, :, 2:5, 2:5])
    assert centre(7, 5) == slice(1, 6)


def test_a_depthwise_convolution_keeps_its_width():
    conv = DynamicConv2d(32, 32, 5, depthwise=True)
    x = torch.randn(2, 12, 6, 6)
    static = conv.extract(12, 12, 3)
    assert static.groups == 12
    torch.testing.assert_close(conv(x, kernel=3), static(x))


def test_extraction_copies_and_leaves_the_supernet_untouched():
    conv, bn = DynamicConv2d(8, 8, 5), DynamicBatchNorm2d(8)
    before = conv.weight.detach().clone()
    small, large = conv.extract(8, 4, 3), conv.extract(8, 8, 5)  # two subnets at once
    with torch.no_grad():
        small.weight.add_(1.0)
        bn.extract(4).weight.add_(1.0)
    assert torch.equal(conv.weight, before)
    assert torch.equal(large.weight, before)
    assert torch.equal(bn.weight, torch.ones(8))


def test_batchnorm_follows_the_width_and_updates_only_those_channels():
    bn = DynamicBatchNorm2d(8).train()
    x = torch.randn(16, 5, 4, 4) * 3 + 2
    out = bn(x)
    assert out.shape == x.shape
    assert torch.all(bn.running_mean[5:] == 0) and torch.all(bn.running_var[5:] == 1)
    assert torch.all(bn.running_mean[:5] != 0)
    static = bn.extract(5).eval()
    torch.testing.assert_close(bn.eval()(x), static(x))


def test_a_linear_layer_takes_an_elastic_input():
    linear = DynamicLinear(64, 10)
    x = torch.randn(3, 40)
    torch.testing.assert_close(linear(x), linear.extract(40)(x))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: DynamicConv2d(8, 8, 5).extract(8, 8, 4), "odd size up to 5"),
        (lambda: DynamicConv2d(8, 8, 5).extract(8, 9, 3), "output width 9 is out of range"),
        (lambda: DynamicBatchNorm2d(4)(torch.zeros(2, 6, 2, 2)), "BatchNorm width 6"),
        (lambda: DynamicConv2d(8, 16, 3, depthwise=True), "keeps its width"),
    ],
)
def test_bad_configurations_are_named(call, message):
    with pytest.raises(InvalidOptionError, match=message):
        call()
