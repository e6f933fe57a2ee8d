"""Macro CNN: a stage-wise network whose stages choose width and depth and whose blocks choose kernel and expansion.

A conv3x3-BN-ReLU stem (stride 1), then stages of blocks; the first block of every stage after the first has stride
2, so any input size works. Each stage's width is a multiplier of its base width, its depth a number of blocks; each
block (up to the largest depth) has a kernel size and, for MBConv blocks, an expansion ratio. Blocks beyond a
stage's depth are inactive: `MacroCNNSpace.canonical` resets their choices, and `MacroCNNSpace.size` counts networks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import AfterValidator, model_validator
from torch import nn

from nas import Architecture, Choice, Cost, NetworkOptions, Seed, register_space
from nas.core.options import Distinct, NonEmptyList, PositiveFloat, PositiveInt
from search_spaces.blocks import HW, BlockNetworkSpace, conv_bn, conv_bn_cost, conv_bn_out


def stage_dim(stage: int, what: str) -> str:
    """Dimension name of a stage's ``width`` or ``depth`` (stages count from 1)."""
    return f"stage{stage}_{what}"


def block_dim(stage: int, block: int, what: str) -> str:
    """Dimension name of a block's ``kernel`` or ``expand`` (stages and blocks count from 1)."""
    return f"stage{stage}_block{block}_{what}"


def scaled_width(base: int, multiplier: float) -> int:
    """``base * multiplier`` rounded half up, at least 1."""
    return max(1, int(base * multiplier + 0.5))


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand-BN-ReLU6] -> depthwise kxk-BN-ReLU6 -> 1x1 project-BN, + input if shapes match.

    The expand convolution is left out when the ratio is 1.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        expansion = [conv_bn(c_in, hidden, 1, act=nn.ReLU6(inplace=True))] if expand != 1 else []
        self.body = nn.Sequential(
            *expansion,
            conv_bn(hidden, hidden, kernel, stride, groups=hidden, act=nn.ReLU6(inplace=True)),
            conv_bn(hidden, c_out, 1),
        )
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


@dataclass(frozen=True)
class MacroBlock:
    """One active block (a `BlockSpec`): channels in and out, kernel, stride, expansion ratio (None: conv-BN-ReLU)."""

    c_in: int
    c_out: int
    kernel: int
    stride: int
    expand: int | None

    def module(self) -> nn.Module:
        if self.expand is None:
            return conv_bn(self.c_in, self.c_out, self.kernel, self.stride, act=nn.ReLU(inplace=True))
        return MBConv(self.c_in, self.c_out, self.kernel, self.stride, self.expand)

    def cost(self, in_hw: HW) -> tuple[Cost, HW]:
        out_hw = conv_bn_out(in_hw, self.kernel, self.stride)
        if self.expand is None:
            return conv_bn_cost(self.c_in, self.c_out, self.kernel, out_hw), out_hw
        hidden = self.c_in * self.expand
        cost = conv_bn_cost(self.c_in, hidden, 1, in_hw) if self.expand != 1 else Cost()
        cost += conv_bn_cost(hidden, hidden, self.kernel, out_hw, groups=hidden)
        return cost + conv_bn_cost(hidden, self.c_out, 1, out_hw), out_hw


def _odd(values: tuple[int, ...]) -> tuple[int, ...]:
    if any(v % 2 == 0 for v in values):
        raise ValueError("kernel sizes are odd, so that blocks keep their padding symmetric")
    return values


class MacroCNNOptions(NetworkOptions):
    """The options of the macro-cnn space (see `MacroCNNSpace`)."""

    block: Literal["mbconv", "conv"] = "mbconv"
    stem_width: PositiveInt = 16
    base_widths: Annotated[tuple[PositiveInt, ...], NonEmptyList] = (16, 32, 64)
    width_multipliers: Annotated[tuple[PositiveFloat, ...], NonEmptyList, Distinct] = (0.5, 0.75, 1.0)
    depths: Annotated[tuple[PositiveInt, ...], NonEmptyList, Distinct] = (1, 2, 3)
    kernel_sizes: Annotated[tuple[PositiveInt, ...], NonEmptyList, Distinct, AfterValidator(_odd)] = (3, 5, 7)
    expand_ratios: Annotated[tuple[PositiveInt, ...], NonEmptyList, Distinct] = (3, 4, 6)

    @model_validator(mode="after")
    def _distinct_widths(self) -> MacroCNNOptions:
        for base in self.base_widths:
            widths = [scaled_width(base, m) for m in self.width_multipliers]
            if len(set(widths)) < len(widths):
                raise ValueError(
                    f"width_multipliers {list(self.width_multipliers)} must give distinct widths, but give {widths} "
                    f"for base width {base}; use fewer multipliers or larger base_widths"
                )
        return self


@register_space("macro-cnn")
class MacroCNNSpace(BlockNetworkSpace):
    """Stage-wise CNN of MBConv or conv-BN-ReLU blocks: per-stage width and depth, per-block kernel and expansion.

    Options (`MacroCNNOptions`, besides the task):
        block: "mbconv" (inverted residual blocks) or "conv" (conv-BN-ReLU blocks, no expansion dimension).
        stem_width: channels of the stem.
        base_widths: one base width per stage; a stage's width is its base width times its width multiplier.
        width_multipliers: the options of each ``stageS_width``.
        depths: the options of each ``stageS_depth`` (number of blocks).
        kernel_sizes: the options of each ``stageS_blockB_kernel`` (odd, so blocks keep their padding symmetric).
        expand_ratios: the options of each ``stageS_blockB_expand`` (MBConv only; 1 leaves out the expand conv).

    Example:
        >>> space = nas.create_space("macro-cnn", input_shape=(1, 28, 28), num_classes=10)
        >>> space.size()
        14832537993
        >>> arch = space.sample(0)
        >>> space.canonical(arch) == arch
        True
    """

    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Stage-wise CNN (MBConv or conv blocks): per-stage width and depth, per-block kernel"
    Options = MacroCNNOptions

    def __init__(self, options: MacroCNNOptions | None = None) -> None:
        options = MacroCNNOptions() if options is None else options
        super().__init__(options)
        self.block = options.block
        self.stem_width = options.stem_width
        self.base_widths = options.base_widths
        self.width_multipliers: tuple[float, ...] = options.width_multipliers
        self.depths = options.depths
        self.kernel_sizes = options.kernel_sizes
        self.expand_ratios = options.expand_ratios
        self._block_dims = tuple(
            tuple(self._block_choices(stage, b) for b in range(1, max(self.depths) + 1))
            for stage in range(1, len(self.base_widths) + 1)
        )
        self._dims = tuple(
            dim
            for stage, (base, blocks) in enumerate(zip(self.base_widths, self._block_dims, strict=True), 1)
            for dim in (
                Choice(
                    stage_dim(stage, "width"),
                    self.width_multipliers,
                    f"multiplier of stage {stage}'s base width {base}",
                ),
                Choice(stage_dim(stage, "depth"), self.depths, f"number of blocks in stage {stage}"),
                *(d for block in blocks for d in block),
            )
        )

    def _block_choices(self, stage: int, block: int) -> tuple[Choice, ...]:
        where = f"block {block} of stage {stage}"
        kernel = Choice(block_dim(stage, block, "kernel"), self.kernel_sizes, f"kernel size of {where}")
        if self.block == "conv":
            return (kernel,)
        return kernel, Choice(block_dim(stage, block, "expand"), self.expand_ratios, f"expansion ratio of {where}")

    def dimensions(self) -> tuple[Choice, ...]:
        return self._dims

    def blocks(self, arch: Architecture) -> list[MacroBlock]:
        """The active blocks of ``arch`` (validated first), in order."""
        self.validate(arch)
        choices: Mapping[str, Any] = arch.choices
        specs = []
        c_in = self.stem_width
        for stage, base in enumerate(self.base_widths, 1):
            width = scaled_width(base, choices[stage_dim(stage, "width")])
            for b in range(1, choices[stage_dim(stage, "depth")] + 1):
                expand = choices[block_dim(stage, b, "expand")] if self.block == "mbconv" else None
                stride = 2 if stage > 1 and b == 1 else 1
                specs.append(MacroBlock(c_in, width, choices[block_dim(stage, b, "kernel")], stride, expand))
                c_in = width
        return specs

    def canonical(self, arch: Architecture) -> Architecture:
        """``arch`` with the choices of inactive blocks (beyond their stage's depth) reset to the first option."""
        self.validate(arch)
        choices: dict[str, Any] = dict(arch.choices)
        for stage, blocks in enumerate(self._block_dims, 1):
            for block in blocks[choices[stage_dim(stage, "depth")] :]:
                choices.update((d.name, d.options[0]) for d in block)
        return self.arch(choices)

    def active_dimensions(self, arch: Architecture) -> tuple[Choice, ...]:
        """Widths and depths, and the choices of the blocks within each stage's depth."""
        self.validate(arch)
        active = {d.name for d in self._dims} - {
            d.name
            for stage, blocks in enumerate(self._block_dims, 1)
            for block in blocks[int(arch.choices[stage_dim(stage, "depth")]) :]  # type: ignore[arg-type]  # a depth is an int
            for d in block
        }
        return tuple(d for d in self._dims if d.name in active)

    def sample(self, rng: Seed = None) -> Architecture:
        """A canonical architecture: each dimension drawn uniformly, then inactive blocks reset."""
        return self.canonical(super().sample(rng))

    def mutate(self, arch: Architecture, rng: Seed = None) -> Architecture:
        """A canonical neighbour, drawn uniformly."""
        return self.canonical(super().mutate(arch, rng))

    def neighbours(self, arch: Architecture) -> Iterator[Architecture]:
        """Canonical architectures that differ from ``arch`` in one active dimension."""
        return (self.canonical(n) for n in super().neighbours(arch))

    def enumerate(self) -> Iterator[Architecture]:
        """Every distinct network once, as its canonical architecture (lazy; walks all combinations of choices)."""
        return (arch for arch in super().enumerate() if arch == self.canonical(arch))

    def size(self) -> int:
        """Number of distinct networks (canonical architectures), counted without enumerating."""
        per_block = len(self.kernel_sizes) * (len(self.expand_ratios) if self.block == "mbconv" else 1)
        per_stage = len(self.width_multipliers) * sum(per_block**depth for depth in self.depths)
        return per_stage ** len(self.base_widths)
