"""Dynamic layers of a weight-sharing supernet, in the manner of Once-for-All.

Each layer holds the weights of its largest configuration. A forward pass takes the configuration as arguments (a
kernel is the centre of the largest kernel, a width a slice of the largest width, BatchNorm follows the width of its
input), so no "active subnet" state is shared between two evaluations. `extract` copies the weights of one
configuration into a plain static layer, leaving the supernet untouched.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import InvalidOptionError


def centre(max_kernel: int, kernel: int) -> slice:
    """The rows (or columns) of a ``kernel`` x ``kernel`` window centred in a ``max_kernel`` one."""
    if kernel > max_kernel or kernel % 2 != max_kernel % 2 or kernel < 1:
        raise InvalidOptionError(
            f"kernel {kernel} is not centred in the largest kernel {max_kernel}: give an odd size up to {max_kernel}"
        )
    start = (max_kernel - kernel) // 2
    return slice(start, start + kernel)


def _check_width(width: int, largest: int, what: str) -> None:
    if not 1 <= width <= largest:
        raise InvalidOptionError(f"{what} {width} is out of range: the supernet holds 1 to {largest}")


class DynamicConv2d(nn.Module):
    """A bias-free convolution with elastic kernel size and input and output widths (``depthwise``: one filter per
    input channel, output width = input width).

    Example:
        >>> conv = DynamicConv2d(16, 32, 7)
        >>> conv(torch.zeros(2, 8, 5, 5), out_channels=24, kernel=3).shape
        torch.Size([2, 24, 5, 5])
    """

    def __init__(self, max_in: int, max_out: int, max_kernel: int, stride: int = 1, depthwise: bool = False) -> None:
        super().__init__()
        if depthwise and max_in != max_out:
            raise InvalidOptionError(f"a depthwise convolution keeps its width; got {max_in} in and {max_out} out")
        self.max_in, self.max_out, self.max_kernel = max_in, max_out, max_kernel
        self.stride, self.depthwise = stride, depthwise
        self.weight = nn.Parameter(torch.empty(max_out, 1 if depthwise else max_in, max_kernel, max_kernel))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's initialization

    def weight_for(self, in_channels: int, out_channels: int, kernel: int) -> torch.Tensor:
        """The weights of one configuration: a view into the largest (no copy)."""
        _check_width(in_channels, self.max_in, "input width")
        _check_width(out_channels, self.max_out, "output width")
        window = centre(self.max_kernel, kernel)
        return self.weight[:out_channels, : 1 if self.depthwise else in_channels, window, window]

    def forward(self, x: torch.Tensor, out_channels: int | None = None, kernel: int | None = None) -> torch.Tensor:
        in_channels = x.shape[1]
        out_channels = in_channels if self.depthwise else out_channels or self.max_out
        kernel = kernel or self.max_kernel
        weight = self.weight_for(in_channels, out_channels, kernel)
        groups = in_channels if self.depthwise else 1
        return F.conv2d(x, weight, None, self.stride, kernel // 2, 1, groups)

    def extract(self, in_channels: int, out_channels: int, kernel: int) -> nn.Conv2d:
        """A static convolution with a copy of this configuration's weights."""
        out_channels = in_channels if self.depthwise else out_channels
        groups = in_channels if self.depthwise else 1
        conv = nn.Conv2d(in_channels, out_channels, kernel, self.stride, kernel // 2, groups=groups, bias=False)
        with torch.no_grad():
            conv.weight.copy_(self.weight_for(in_channels, out_channels, kernel))
        return conv


class DynamicBatchNorm2d(nn.Module):
    """BatchNorm over the first channels of the largest width: as many as its input has."""

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, max_channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.max_channels, self.momentum, self.eps = max_channels, momentum, eps
        self.weight = nn.Parameter(torch.ones(max_channels))
        self.bias = nn.Parameter(torch.zeros(max_channels))
        self.register_buffer("running_mean", torch.zeros(max_channels))
        self.register_buffer("running_var", torch.ones(max_channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        _check_width(c, self.max_channels, "BatchNorm width")
        if self.training:
            self.num_batches_tracked.add_(1)
        # The running statistics are views of the largest: training updates exactly the first c channels.
        return F.batch_norm(
            x,
            self.running_mean[:c],
            self.running_var[:c],
            self.weight[:c],
            self.bias[:c],
            self.training,
            self.momentum,
            self.eps,
        )

    def extract(self, channels: int) -> nn.BatchNorm2d:
        """A static BatchNorm with copies of the first ``channels`` channels' parameters and statistics."""
        _check_width(channels, self.max_channels, "BatchNorm width")
        static = nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(static, name).copy_(getattr(self, name)[:channels])
            static.num_batches_tracked = self.num_batches_tracked.clone()
        return static


class DynamicLinear(nn.Module):
    """A linear layer whose input width is elastic (the classifier after a width-elastic last stage)."""

    def __init__(self, max_in: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(max_in, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_width(x.shape[1], self.linear.in_features, "input width")
        return F.linear(x, self.linear.weight[:, : x.shape[1]], self.linear.bias)

    def extract(self, in_features: int) -> nn.Linear:
        """A static linear layer with a copy of the weights of the first ``in_features`` inputs."""
        _check_width(in_features, self.linear.in_features, "input width")
        static = nn.Linear(in_features, self.linear.out_features)
        with torch.no_grad():
            static.weight.copy_(self.linear.weight[:, :in_features])
            static.bias.copy_(self.linear.bias)
        return static
