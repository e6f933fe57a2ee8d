"""ResNet-20 pooling space: where and how ResNet-20 downsamples (Roshtkhari et al., 2023).

"Balanced Mixture of SuperNets for Learning the CNN Pooling Architecture": a conv3x3 stem and 9 basic residual
blocks; a fixed number of downsampling layers sit at chosen blocks, each halving the spatial size (rounding up) and
doubling the width, by 2x2 max or average pooling before the block, or by a stride-2 first convolution in the block.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from nas import Architecture, Choice, Cost, NetworkOptions, register_space
from nas.core.cost import conv_out
from nas.core.options import Distinct, NonEmptyList, PositiveInt
from search_spaces.blocks import HW, BlockNetworkSpace, conv_bn, conv_bn_cost, conv_bn_out

NUM_BLOCKS = 9
Op = Literal["max", "avg", "conv"]
OPS: tuple[Op, ...] = ("max", "avg", "conv")
POOLS: dict[str, type[nn.MaxPool2d | nn.AvgPool2d]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def op_dim(layer: int) -> str:
    """Dimension name of the operation of the ``layer``-th downsampling layer (from 1, in block order)."""
    return f"downsample_op_{layer}"


def pooled(hw: HW) -> HW:
    """Spatial size after the 2x2, stride-2 pooling of a downsampling layer (``ceil_mode=True``)."""
    return conv_out(hw[0], 2, 2, ceil_mode=True), conv_out(hw[1], 2, 2, ceil_mode=True)


def projects(c_in: int, c_out: int, stride: int) -> bool:
    """Whether a basic block's shortcut is a 1x1 conv-BN (channels or stride change) rather than the identity."""
    return c_in != c_out or stride != 1


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU -> conv3x3-BN, plus the shortcut, then ReLU; ``stride`` applies to the first conv."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(c_in, c_out, 3, stride, act=nn.ReLU(inplace=True)), conv_bn(c_out, c_out, 3))
        self.shortcut = conv_bn(c_in, c_out, 1, stride) if projects(c_in, c_out, stride) else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


@dataclass(frozen=True)
class PoolingBlock:
    """One block (a `BlockSpec`): channels in and out and its downsampling operation (None: no downsampling)."""

    c_in: int
    c_out: int
    downsample: str | None

    @property
    def stride(self) -> int:
        """Stride of the block's first convolution."""
        return 2 if self.downsample == "conv" else 1

    def module(self) -> nn.Module:
        block = BasicBlock(self.c_in, self.c_out, self.stride)
        if self.downsample in POOLS:
            return nn.Sequential(POOLS[self.downsample](2, stride=2, ceil_mode=True), block)
        return block

    def cost(self, in_hw: HW) -> tuple[Cost, HW]:
        out_hw = conv_bn_out(pooled(in_hw) if self.downsample in POOLS else in_hw, 3, self.stride)
        cost = conv_bn_cost(self.c_in, self.c_out, 3, out_hw) + conv_bn_cost(self.c_out, self.c_out, 3, out_hw)
        if projects(self.c_in, self.c_out, self.stride):
            cost += conv_bn_cost(self.c_in, self.c_out, 1, out_hw)
        return cost, out_hw


class ResNet20PoolingOptions(NetworkOptions):
    """The options of the resnet20-pooling space (see `ResNet20PoolingSpace`)."""

    num_downsample: Annotated[int, Field(ge=1, le=NUM_BLOCKS)] = 2
    base_width: PositiveInt = 16
    ops: Annotated[tuple[Op, ...], NonEmptyList, Distinct] = OPS


@register_space("resnet20-pooling")
class ResNet20PoolingSpace(BlockNetworkSpace):
    """ResNet-20 whose downsampling layers (how many is an option) are placed and typed by the architecture.

    Options (`ResNet20PoolingOptions`, besides the task):
        num_downsample: number of downsampling layers, 1 to 9; each doubles the width.
        base_width: channels of the stem and of the blocks before the first downsampling layer.
        ops: the downsampling operations to choose from, among "max", "avg" and "conv".

    Example:
        >>> space = nas.create_space("resnet20-pooling", input_shape=(1, 28, 28), num_classes=10)
        >>> space.size()
        324
        >>> arch = space.arch({"downsample_at": [3, 6], "downsample_op_1": "max", "downsample_op_2": "conv"})
        >>> space.cost(arch).params
        272186
    """

    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "ResNet-20 with searched positions and types (max, avg, strided conv) of its downsampling"
    )
    Options = ResNet20PoolingOptions

    def __init__(self, options: ResNet20PoolingOptions | None = None) -> None:
        options = ResNet20PoolingOptions() if options is None else options
        super().__init__(options)
        num_downsample = options.num_downsample
        self.num_downsample = num_downsample
        self.base_width = self.stem_width = options.base_width
        self.ops: tuple[str, ...] = options.ops
        placements = tuple(itertools.combinations(range(NUM_BLOCKS), num_downsample))
        self._dims = (
            Choice("downsample_at", placements, f"blocks (0 to {NUM_BLOCKS - 1}) that downsample, in increasing order"),
            *(
                Choice(op_dim(layer), self.ops, f"operation of downsampling layer {layer} (in block order)")
                for layer in range(1, num_downsample + 1)
            ),
        )

    def dimensions(self) -> tuple[Choice, ...]:
        return self._dims

    def blocks(self, arch: Architecture) -> list[PoolingBlock]:
        """The 9 blocks of ``arch`` (validated first), in order."""
        self.validate(arch)
        choices: Mapping[str, Any] = arch.choices
        ops = {block: choices[op_dim(layer)] for layer, block in enumerate(choices["downsample_at"], 1)}
        specs = []
        width = self.base_width
        for block in range(NUM_BLOCKS):
            c_out = 2 * width if block in ops else width
            specs.append(PoolingBlock(width, c_out, ops.get(block)))
            width = c_out
        return specs
