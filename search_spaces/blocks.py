"""Building blocks shared by the CNN spaces: conv-BN units and the stem-blocks-classifier skeleton, with their costs.

A space describes its blocks as `BlockSpec` objects; `Network` builds them and `network_cost` adds up their
analytic costs, so the module and its cost are made from the same description.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from nas import Architecture, Cost, NetworkSpace
from nas.core.cost import batchnorm, conv2d, conv_out, linear

HW = tuple[int, int]


def conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: nn.Module | None = None
) -> nn.Sequential:
    """Conv2d (no bias, padding ``kernel // 2``) -> BatchNorm2d, then ``act`` when given."""
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), *([act] if act is not None else []))


def conv_bn_out(hw: HW, kernel: int, stride: int = 1) -> HW:
    """Spatial size of a `conv_bn` output for an ``hw`` input."""
    return conv_out(hw[0], kernel, stride, kernel // 2), conv_out(hw[1], kernel, stride, kernel // 2)


def conv_bn_cost(c_in: int, c_out: int, kernel: int, out_hw: HW, groups: int = 1) -> Cost:
    """Cost of a `conv_bn` producing an ``out_hw`` map."""
    return conv2d(c_in, c_out, kernel, out_hw, groups=groups) + batchnorm(c_out)


class BlockSpec(Protocol):
    """Description of one block of a `Network`: it makes the module and computes its cost."""

    @property
    def c_out(self) -> int:
        """Output channels."""

    def module(self) -> nn.Module:
        """A fresh module for this block."""

    def cost(self, in_hw: HW) -> tuple[Cost, HW]:
        """Cost of the block on an ``in_hw`` input, and its output size."""


class Network(nn.Module):
    """Stem (conv3x3-BN-ReLU, stride 1) -> blocks -> global average pooling -> linear classifier; returns logits."""

    def __init__(self, in_channels: int, stem_width: int, blocks: Sequence[BlockSpec], num_classes: int) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, stem_width, 3, act=nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(block.module() for block in blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(blocks[-1].c_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.blocks(self.stem(x))).flatten(1))


class BlockNetworkSpace(NetworkSpace):
    """A space whose networks are a `Network`: subclasses set ``stem_width`` and describe an architecture's blocks;
    `build` and `cost` both follow that one description."""

    stem_width: int

    @abstractmethod
    def blocks(self, arch: Architecture) -> Sequence[BlockSpec]:
        """The blocks of ``arch`` (validated first), in order."""

    def build(self, arch: Architecture) -> nn.Module:
        return Network(self.input_shape[0], self.stem_width, self.blocks(arch), self.num_classes)

    def cost(self, arch: Architecture) -> Cost:
        return network_cost(self.input_shape, self.stem_width, self.blocks(arch), self.num_classes)


def network_cost(
    input_shape: tuple[int, int, int], stem_width: int, blocks: Sequence[BlockSpec], num_classes: int
) -> Cost:
    """Cost of the `Network` with these blocks for one input of ``input_shape``."""
    in_channels, h, w = input_shape
    hw: HW = (h, w)
    total = conv_bn_cost(in_channels, stem_width, 3, hw) + linear(blocks[-1].c_out, num_classes)
    for block in blocks:
        cost, hw = block.cost(hw)
        total += cost
    return total
