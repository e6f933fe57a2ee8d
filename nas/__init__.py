"""Neural architecture search for the Pareto front of accuracy versus cost.

The public API: import from ``nas``, never from a submodule.

Example:
    >>> import nas
    >>> space = nas.create_space("nb201", input_shape=(3, 32, 32), num_classes=10)
    >>> arch = space.sample(0)
    >>> space.cost(arch).params > 0
    True
"""

from __future__ import annotations

from nas.cost import Cost
from nas.errors import (
    ExportMismatchError,
    InvalidArchitectureError,
    InvalidOptionError,
    MissingExtraError,
    NASError,
    UnknownNameError,
)
from nas.export import check_onnx, export_onnx
from nas.latency import Backend, Latency, measure_latency
from nas.registry import Registry
from nas.space import Architecture, Choice, SearchSpace, Seed
from nas.spaces import SPACES, create_space, list_spaces, register_space

__all__ = [
    "SPACES",
    "Architecture",
    "Backend",
    "Choice",
    "Cost",
    "ExportMismatchError",
    "InvalidArchitectureError",
    "InvalidOptionError",
    "Latency",
    "MissingExtraError",
    "NASError",
    "Registry",
    "SearchSpace",
    "Seed",
    "UnknownNameError",
    "check_onnx",
    "create_space",
    "export_onnx",
    "list_spaces",
    "measure_latency",
    "register_space",
]
