"""The data behind a trained network: how a raw sample becomes its input, and what its labels name.

An evaluator that loads data records a `DataRecord` in each result's provenance details; an export writes it into
the model card and the ONNX file's metadata, so that a deployer feeds the network what it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np

from nas.core.evaluation import Provenance


@dataclass(frozen=True)
class Preprocessing:
    """How one raw sample becomes the network's input: ``x = (float32(raw) / divide_by - mean) / std``, with the
    mean and std per channel (none where None), laid out ``(N, C, H, W)``.

    Attributes:
        raw: what one raw sample is, in words.
        raw_dtype: its dtype, e.g. ``uint8``.
        raw_layout: its axes, e.g. ``H, W`` (one channel), ``H, W, C`` (channels last) or ``C, H, W``.
        raw_range: the (low, high) range of its values; None where unknown.
        divide_by: the divisor that maps raw values to the network's scale.
        channels: what the input's channels are, e.g. ``grayscale`` or ``RGB``.
        mean, std: per-channel normalization after the division; None where there is none.

    Example:
        >>> digits = Preprocessing("8x8 digit image", "uint8", "H, W", (0, 16), 16.0, "grayscale")
        >>> float(digits.apply(np.full((1, 1, 8, 8), 8, np.uint8)).max())
        0.5
    """

    raw: str
    raw_dtype: str
    raw_layout: str
    raw_range: tuple[float, float] | None
    divide_by: float
    channels: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    FORMULA: ClassVar[str] = "x = (float32(raw) / divide_by - mean) / std"
    #: The layout and dtype of the network's input.
    LAYOUT: ClassVar[str] = "N, C, H, W"
    DTYPE: ClassVar[str] = "float32"

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """The network's input for raw samples already laid out ``(N, C, H, W)``."""
        x = raw.astype(np.float32) / np.float32(self.divide_by)
        if self.mean is not None:
            x -= np.asarray(self.mean, np.float32)[:, None, None]
        if self.std is not None:
            x /= np.asarray(self.std, np.float32)[:, None, None]
        return x

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (lists for tuples), with the formula and the input's layout and dtype; `from_dict` reads it
        back."""
        plain = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {"formula": self.FORMULA, **plain, "layout": self.LAYOUT, "dtype": self.DTYPE}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        """Inverse of `to_dict`."""
        values = {f.name: data[f.name] for f in fields(cls)}
        for key in ("raw_range", "mean", "std"):
            values[key] = None if values[key] is None else tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class DataRecord:
    """The data a result was obtained on: the dataset's name, its preprocessing and its class names (``classes[k]``
    names label k), recorded in the provenance details under ``dataset``, ``preprocessing`` and ``classes``."""

    dataset: str
    preprocessing: Preprocessing
    classes: tuple[str, ...]

    def details(self) -> dict[str, Any]:
        """The provenance details that record it."""
        return {"dataset": self.dataset, "preprocessing": self.preprocessing.to_dict(), "classes": list(self.classes)}

    @classmethod
    def recorded(cls, provenance: Provenance) -> DataRecord | None:
        """The record in ``provenance``'s details; None where there is none (e.g. a benchmark table's results)."""
        details = provenance.details
        if "preprocessing" not in details:
            return None
        return cls(details["dataset"], Preprocessing.from_dict(details["preprocessing"]), tuple(details["classes"]))
