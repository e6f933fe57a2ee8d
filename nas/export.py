"""Export of built networks to deployable formats: ONNX, checked against PyTorch in onnxruntime.

ONNX needs the optional ``export`` extra (``pip install 'nas-pareto[export]'``: onnx, onnxruntime, onnxscript); its
packages are imported only when a function needs them. An exported file has one input ``input`` of shape
``(batch, *input_shape)`` with a free batch dimension, and one output ``logits``.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from nas.errors import ExportMismatchError, InvalidOptionError, MissingExtraError

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
EXTRA = "nas-pareto[export]"


def import_extra(name: str) -> ModuleType:
    """Import ``name`` from the ``export`` extra, or raise `MissingExtraError` saying what to install."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise MissingExtraError(
            f"{name} is not installed; ONNX export and onnxruntime need the export extra: pip install '{EXTRA}'"
        ) from err


def random_input(input_shape: Sequence[int], batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A float32 batch of shape ``(batch, *input_shape)`` drawn from N(0, 1) with its own generator.

    Example:
        >>> random_input((3, 8, 8), batch=2).shape
        torch.Size([2, 3, 8, 8])
    """
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in shape):
        raise InvalidOptionError(
            f"input_shape must be positive integers for one sample without the batch, e.g. (3, 32, 32); "
            f"got {input_shape!r}"
        )
    if batch < 1:
        raise InvalidOptionError(f"batch must be a positive integer; got {batch!r}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *(int(s) for s in shape)), generator=generator)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for the duration of the block, then restore its training flags."""
    flags = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for m, training in flags.items():
            m.train(training)


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's noise that says nothing about the user's model (torchvision ops it skips, and a
    deprecation inside torch's own pytree code), for the duration of one export."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def export_onnx(module: nn.Module, input_shape: Sequence[int], path: str | Path, *, opset: int | None = None) -> Path:
    """Export ``module`` (in eval mode) to one ONNX file with torch's dynamo exporter and a free batch dimension.

    Args:
        module: the network; its training flags are restored afterwards.
        input_shape: the shape of one sample, without the batch, e.g. ``(3, 32, 32)``.
        path: the ``.onnx`` file to write; missing parent directories are created.
        opset: the ONNX opset version; None takes the exporter's default.

    Returns:
        The path written. Weights are inside the file unless they exceed ONNX's 2 GB limit, in which case they go to
        ``<path>.data`` beside it.

    Example:
        >>> export_onnx(nn.Sequential(nn.Flatten(), nn.Linear(12, 4)), (3, 2, 2), "model.onnx")  # doctest: +SKIP
        PosixPath('model.onnx')
    """
    for name in ("onnx", "onnxscript"):
        import_extra(name)
    example = random_input(input_shape, batch=2)  # not 1: torch.export specializes size-1 dimensions
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with eval_mode(module), _quiet_exporter():
        torch.onnx.export(
            module,
            (example,),
            path,
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    return path


def check_onnx(
    path: str | Path,
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    batch: int = 3,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    seed: int = 0,
) -> float:
    """Run the ONNX file in onnxruntime and compare its logits with ``module``'s (in eval mode) on a seeded batch.

    Args:
        path: an ONNX file written by `export_onnx`.
        module: the PyTorch network it was exported from.
        input_shape: the shape of one sample, without the batch.
        batch: the batch size of the check; the default 3 differs from the export's example to prove the free batch.
        atol: absolute tolerance.
        rtol: tolerance relative to the PyTorch output.
        seed: seed of the random batch.

    Returns:
        The largest absolute difference between the two outputs.

    Raises:
        ExportMismatchError: some output differs by more than ``atol + rtol * |torch output|``.
    """
    ort = import_extra("onnxruntime")
    path = Path(path)
    if not path.is_file():
        raise InvalidOptionError(f"no ONNX file at {path}; write one with export_onnx first")
    x = random_input(input_shape, batch=batch, seed=seed)
    with eval_mode(module), torch.inference_mode():
        expected = module(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    if actual.shape != expected.shape:
        raise ExportMismatchError(f"{path}: onnxruntime gives logits of shape {actual.shape}, torch {expected.shape}")
    diff = np.abs(actual - expected)
    max_diff = float(diff.max(initial=0.0))
    if not np.all(diff <= atol + rtol * np.abs(expected)):
        raise ExportMismatchError(
            f"{path}: onnxruntime and torch outputs differ by up to {max_diff:.3g} on a batch of {batch} "
            f"(tolerance atol={atol:g}, rtol={rtol:g})"
        )
    return max_diff
