"""Analytic cost of networks: multiply-accumulates and parameters, from shapes alone.

Convention (contract): ``macs`` counts the multiply-accumulates of convolution and linear layers, exactly
``torch.utils.flop_counter.FlopCounterMode``'s total / 2 for one input (biases, BatchNorm, activations and pooling
count zero); ``params`` is exactly ``sum(p.numel() for p in module.parameters())``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    """Multiply-accumulates and parameter count of a network (or of a part of it, summed with ``+``)."""

    macs: int = 0
    params: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.macs + other.macs, self.params + other.params)

    def __mul__(self, times: int) -> Cost:
        return Cost(self.macs * times, self.params * times)

    def to_dict(self) -> dict[str, int]:
        return {"macs": self.macs, "params": self.params}


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling along one axis (PyTorch's formula)."""
    span = size + 2 * padding - kernel
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:  # PyTorch drops a window that starts in the padding
        out -= 1
    return out


def conv2d(c_in: int, c_out: int, kernel: int, out_hw: tuple[int, int], groups: int = 1, bias: bool = False) -> Cost:
    """Cost of ``nn.Conv2d(c_in, c_out, kernel, groups=groups, bias=bias)`` producing an ``out_hw`` map."""
    weights = c_out * (c_in // groups) * kernel * kernel
    return Cost(macs=weights * out_hw[0] * out_hw[1], params=weights + (c_out if bias else 0))


def linear(n_in: int, n_out: int, bias: bool = True) -> Cost:
    """Cost of ``nn.Linear(n_in, n_out, bias=bias)`` on one vector."""
    return Cost(macs=n_in * n_out, params=n_in * n_out + (n_out if bias else 0))


def batchnorm(channels: int) -> Cost:
    """Cost of an affine ``nn.BatchNorm2d(channels)``: its weight and bias; no multiply-accumulates by convention."""
    return Cost(params=2 * channels)
