"""Dynamic layers of a weight-sharing supernet, in the manner of Once-for-All.

Each layer holds the weights of its largest configuration and hands out the tensors of a smaller one: a kernel is
the centre of the largest kernel (optionally through Once-for-All's learned kernel transformation), a width is a
slice of the largest width, and BatchNorm follows the width. The tensors are views (or differentiable functions) of
the shared weights, so a subnet run on them trains the supernet, and in-place updates of BatchNorm's running
statistics land in the shared buffers; no "active subnet" state is kept in the layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nas.core.errors import InvalidOptionError

Tensors = dict[str, torch.Tensor]


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
    """The weights of a bias-free convolution with elastic kernel size and input and output widths (``depthwise``:
    one filter per channel, so the output width is the input width).

    Args:
        kernel_transform: learn, per smaller kernel size, a linear map of the centre of the next larger kernel
            (Once-for-All), instead of using the centre as it is; each map starts as the identity.

    Example:
        >>> conv = DynamicConv2d(16, 32, 7)
        >>> conv.weight_for(8, 24, 3).shape
        torch.Size([24, 8, 3, 3])
    """

    def __init__(
        self, max_in: int, max_out: int, max_kernel: int, depthwise: bool = False, kernel_transform: bool = False
    ) -> None:
        super().__init__()
        if depthwise and max_in != max_out:
            raise InvalidOptionError(f"a depthwise convolution keeps its width; got {max_in} in and {max_out} out")
        self.max_in, self.max_out, self.max_kernel, self.depthwise = max_in, max_out, max_kernel, depthwise
        self.weight = nn.Parameter(torch.empty(max_out, 1 if depthwise else max_in, max_kernel, max_kernel))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's initialization
        smaller = range(max_kernel - 2, 0, -2) if kernel_transform else ()
        self.transforms = nn.ParameterDict({str(k): nn.Parameter(torch.eye(k * k)) for k in smaller})

    def weight_for(self, in_channels: int, out_channels: int, kernel: int) -> torch.Tensor:
        """The weights of one configuration: a view into the largest, or its transformed centre."""
        _check_width(in_channels, self.max_in, "input width")
        _check_width(out_channels, self.max_out, "output width")
        centre(self.max_kernel, kernel)  # checks the kernel
        weight = self.weight[:out_channels, : 1 if self.depthwise else in_channels]
        size = self.max_kernel
        while size > kernel:  # the centre of each next smaller kernel, transformed when learned
            window = centre(size, size - 2)
            weight, size = weight[:, :, window, window], size - 2
            if str(size) in self.transforms:
                flat = weight.reshape(*weight.shape[:2], size * size) @ self.transforms[str(size)]
                weight = flat.reshape(*weight.shape[:2], size, size)
        return weight


class DynamicBatchNorm2d(nn.Module):
    """BatchNorm parameters and running statistics of the largest width, of which a subnet uses the first channels."""

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        self.max_channels = max_channels
        self.weight = nn.Parameter(torch.ones(max_channels))
        self.bias = nn.Parameter(torch.zeros(max_channels))
        self.register_buffer("running_mean", torch.zeros(max_channels))
        self.register_buffer("running_var", torch.ones(max_channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def tensors(self, channels: int) -> Tensors:
        """The `nn.BatchNorm2d` state of the first ``channels`` channels, as views (training updates them in place)."""
        _check_width(channels, self.max_channels, "BatchNorm width")
        return {
            "weight": self.weight[:channels],
            "bias": self.bias[:channels],
            "running_mean": self.running_mean[:channels],
            "running_var": self.running_var[:channels],
            "num_batches_tracked": self.num_batches_tracked,
        }


class DynamicLinear(nn.Module):
    """The weights of a linear layer whose input width is elastic (the classifier after a width-elastic stage)."""

    def __init__(self, max_in: int, out_features: int) -> None:
        super().__init__()
        self.max_in = max_in
        reference = nn.Linear(max_in, out_features)  # nn.Linear's initialization
        self.weight, self.bias = reference.weight, reference.bias

    def tensors(self, in_features: int) -> Tensors:
        """The `nn.Linear` state for the first ``in_features`` inputs."""
        _check_width(in_features, self.max_in, "input width")
        return {"weight": self.weight[:, :in_features], "bias": self.bias}


def prefixed(prefix: str, tensors: Tensors) -> Tensors:
    """``tensors`` with their names under the module path ``prefix``."""
    return {f"{prefix}.{name}": tensor for name, tensor in tensors.items()}


def conv_bn_tensors(
    prefix: str, conv: DynamicConv2d, norm: DynamicBatchNorm2d, c_in: int, c_out: int, kernel: int
) -> Tensors:
    """The state of a `search_spaces.blocks.conv_bn` unit (``prefix.0`` the convolution, ``prefix.1`` the BatchNorm)."""
    width = c_in if conv.depthwise else c_out
    return {f"{prefix}.0.weight": conv.weight_for(c_in, width, kernel), **prefixed(f"{prefix}.1", norm.tensors(width))}
