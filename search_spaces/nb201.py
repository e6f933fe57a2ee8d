"""NAS-Bench-201: the 15,625-cell space exactly as the benchmark defines it (Dong & Yang, ICLR 2020).

The cell is a 4-node DAG; each of its 6 edges (node j -> node i, j < i) carries one of five operations. The
network is the benchmark's skeleton: a 3x3 stem with 16 channels, three stages of 5 cells with 16 / 32 / 64 channels,
residual reduction blocks between stages, BN-ReLU, global average pooling and a linear classifier. Modules mirror
the reference implementation (``TinyNetwork`` / ``InferCell``) one for one, so parameter counts match the
benchmark's published figures exactly.
"""

from __future__ import annotations

import re
from functools import cache
from typing import ClassVar

import torch
from pydantic import model_validator
from torch import nn

from nas import (
    Architecture,
    CellGraph,
    Choice,
    Cost,
    InvalidArchitectureError,
    NetworkOptions,
    NetworkSpace,
    register_space,
)
from nas.core.cost import batchnorm, conv2d, linear

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edges (to node, from node) in the order of the benchmark's string: |1<-0|+|2<-0|2<-1|+|3<-0|3<-1|3<-2|.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
STEM_CHANNELS = 16
CELLS_PER_STAGE = 5
STAGES = 3
_STRING = re.compile(r"^\|(\w+)~0\|\+\|(\w+)~0\|(\w+)~1\|\+\|(\w+)~0\|(\w+)~1\|(\w+)~2\|$")


def edge_name(to: int, frm: int) -> str:
    """Dimension name of the edge from node ``frm`` into node ``to``."""
    return f"edge_{to}_{frm}"


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d (no bias) -> BatchNorm2d, the benchmark's convolution unit."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` operation: a zero tensor of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, channels: int) -> nn.Module:
    """The module of one cell edge (stride 1, ``channels`` in and out)."""
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1)
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity()
    return Zero()


class Cell(nn.Module):
    """The benchmark's ``InferCell``: node i = sum of the edges into it; the output is node 3."""

    def __init__(self, ops: dict[tuple[int, int], str], channels: int) -> None:
        super().__init__()
        self.edges = EDGES
        self.layers = nn.ModuleList(make_op(ops[edge], channels) for edge in EDGES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            nodes.append(
                sum(layer(nodes[frm]) for (to, frm), layer in zip(self.edges, self.layers, strict=True) if to == node)
            )
        return nodes[-1]


class ResidualReduction(nn.Module):
    """The benchmark's ``ResNetBasicblock`` with stride 2: two ReLU-Conv-BN and an avg-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The benchmark's ``TinyNetwork`` for one cell; returns logits."""

    def __init__(self, ops: dict[tuple[int, int], str], in_channels: int, num_classes: int) -> None:
        super().__init__()
        c = STEM_CHANNELS
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        for stage in range(STAGES):
            if stage:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(Cell(ops, c) for _ in range(CELLS_PER_STAGE))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.global_pooling(self.lastact(self.cells(self.stem(x))))
        return self.classifier(out.flatten(1))


class NB201Options(NetworkOptions):
    """The task of the nb201 space: an input whose height and width are multiples of 4."""

    @model_validator(mode="after")
    def _divisible_by_4(self) -> NB201Options:
        _, h, w = self.input_shape
        if h % 4 or w % 4:
            raise ValueError(
                f"nb201 needs a height and width divisible by 4 (its two reduction blocks halve them); got {h}x{w}"
            )
        return self


@register_space("nb201")
class NB201Space(NetworkSpace):
    """NAS-Bench-201 cells (15,625; 6,466 distinct functions) in the benchmark's CIFAR skeleton.

    Example:
        >>> space = nas.create_space("nb201", input_shape=(3, 32, 32), num_classes=10)
        >>> arch = space.from_string(
        ...     "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
        ... )
        >>> space.cost(arch).params
        802426
    """

    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "NAS-Bench-201 cell space: 6 edges x 5 operations (15,625 cells) in the benchmark's skeleton"
    )

    Options = NB201Options

    def __init__(self, options: NB201Options | None = None) -> None:
        super().__init__(NB201Options() if options is None else options)
        self._dims = tuple(
            Choice(edge_name(to, frm), OPS, f"operation on the edge from node {frm} to node {to}") for to, frm in EDGES
        )
        self._fixed_cost, self._op_cost, self._fixed_extra, self._op_extra = self._cost_tables()

    def dimensions(self) -> tuple[Choice, ...]:
        return self._dims

    def ops(self, arch: Architecture) -> dict[tuple[int, int], str]:
        """The operation on each edge ``(to, from)``."""
        return {(to, frm): str(arch.choices[edge_name(to, frm)]) for to, frm in EDGES}

    def cell(self, arch: Architecture) -> CellGraph:
        """The cell: 4 nodes, one operation per edge, ``none`` for no edge."""
        ops = self.ops(arch)
        return CellGraph(4, tuple((frm, to, ops[(to, frm)]) for to, frm in EDGES), OPS, "none")

    def build(self, arch: Architecture) -> nn.Module:
        self.validate(arch)
        return NB201Network(self.ops(arch), self.input_shape[0], self.num_classes)

    def cost(self, arch: Architecture) -> Cost:
        self.validate(arch)
        return sum((self._op_cost[str(op)] for op in arch.choices.values()), self._fixed_cost)

    def published_flops(self, arch: Architecture) -> int:
        """FLOPs in the convention of the benchmark's published figures (its ``flops`` column, times 1e6).

        Our `cost` MACs plus the per-element terms the benchmark's counter adds: 2 per BatchNorm output element,
        1 per ReLU element, and out_elements * k^2 per pooling layer, with k = in // out + 1 for the final adaptive
        average pooling. The linear layer's bias is not counted. Reproduces all published NB201 FLOPs exactly.
        """
        self.validate(arch)
        extra = sum(self._op_extra[str(op)] for op in arch.choices.values())
        return self.cost(arch).macs + self._fixed_extra + extra  # type: ignore[index]

    def _cost_tables(self) -> tuple[Cost, dict[str, Cost], int, dict[str, int]]:
        """Cost of the skeleton and of each operation on one edge, summed over the 15 cells that share it; then the
        per-element terms of `published_flops` for the skeleton and for each operation."""
        c_in, h, w = self.input_shape
        c = STEM_CHANNELS
        fixed = conv2d(c_in, c, 3, (h, w)) + batchnorm(c)
        per_op = dict.fromkeys(OPS, Cost())
        extra = dict.fromkeys(OPS, 0)
        fixed_extra = 2 * c * h * w  # stem BatchNorm
        for stage in range(STAGES):
            if stage:
                fixed_extra += 2 * c * h * w  # conv_a's ReLU on the input; the shortcut's 2x2 avg-pool (out * 4)
                h, w = h // 2, w // 2
                fixed += conv2d(c, 2 * c, 3, (h, w)) + conv2d(2 * c, 2 * c, 3, (h, w)) + batchnorm(2 * c) * 2
                fixed += conv2d(c, 2 * c, 1, (h, w))
                c *= 2
                fixed_extra += 5 * c * h * w  # conv_a's BatchNorm, conv_b's ReLU and BatchNorm
            for op, kernel in (("nor_conv_1x1", 1), ("nor_conv_3x3", 3)):
                per_op[op] += (conv2d(c, c, kernel, (h, w)) + batchnorm(c)) * CELLS_PER_STAGE
                extra[op] += 3 * c * h * w * CELLS_PER_STAGE  # ReLU + BatchNorm
            extra["avg_pool_3x3"] += 9 * c * h * w * CELLS_PER_STAGE
        fixed += batchnorm(c) + linear(c, self.num_classes)
        fixed_extra += 3 * c * h * w + c * (h + 1) * (w + 1)  # final BatchNorm + ReLU, adaptive average pooling
        return fixed, per_op, fixed_extra, extra

    # -- the benchmark's notations ------------------------------------------------------------------------------
    def to_string(self, arch: Architecture) -> str:
        """The benchmark's string, e.g. ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|``."""
        ops = self.ops(arch)
        nodes = ["|" + "|".join(f"{ops[(to, frm)]}~{frm}" for frm in range(to)) + "|" for to in (1, 2, 3)]
        return "+".join(nodes)

    def from_string(self, text: str) -> Architecture:
        """Parse the benchmark's string; `InvalidArchitectureError` says what the format is."""
        match = _STRING.match(text.strip())
        if not match:
            raise InvalidArchitectureError(
                f"not a NAS-Bench-201 string: {text!r}; expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2| "
                f"with op one of {', '.join(OPS)}"
            )
        return self.arch({edge_name(to, frm): op for (to, frm), op in zip(EDGES, match.groups(), strict=True)})

    def unique_string(self, arch: Architecture) -> str:
        """The benchmark's isomorphism key (``Structure.to_unique_str(consider_zero=True)``).

        A node is the sorted sum of its incoming terms: ``#`` for a zero term (``none``, or any edge from a node that
        is exactly ``#``), the source itself for ``skip_connect``, and ``(source)@op`` otherwise.
        """
        return _unique_string(tuple(self.ops(arch)[edge] for edge in EDGES))

    def canonical(self, arch: Architecture) -> Architecture:
        """The first cell (in enumeration order) with the same `unique_string` as ``arch``."""
        self.validate(arch)
        representative = _representatives()[self.unique_string(arch)]
        return self.arch({edge_name(to, frm): op for (to, frm), op in zip(EDGES, representative, strict=True)})

    def size(self) -> int:
        return len(OPS) ** len(EDGES)


def _unique_string(ops: tuple[str, ...]) -> str:
    nodes = {0: "0"}
    for node in (1, 2, 3):
        terms = []
        for (to, frm), op in zip(EDGES, ops, strict=True):
            if to != node:
                continue
            if op == "none" or nodes[frm] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[frm])
            else:
                terms.append(f"({nodes[frm]})@{op}")
        nodes[node] = "+".join(sorted(terms))
    return nodes[3]


@cache
def _representatives() -> dict[str, tuple[str, ...]]:
    """Unique string -> the first cell (product order of `OPS` over `EDGES`) that has it."""
    import itertools

    table: dict[str, tuple[str, ...]] = {}
    for ops in itertools.product(OPS, repeat=len(EDGES)):
        table.setdefault(_unique_string(ops), ops)
    return table
