"""Weight-sharing supernets: dynamic layers with elastic kernels and widths, from which static subnets are extracted."""

from evaluators.supernet._layers import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear, centre

__all__ = ["DynamicBatchNorm2d", "DynamicConv2d", "DynamicLinear", "centre"]
