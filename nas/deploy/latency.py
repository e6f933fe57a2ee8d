"""Latency of a built network on this machine: CPU, batch 1, a fixed number of threads, one inference at a time.

Each backend is a context manager that prepares the network and yields a function running one inference on a
fixed input; `measure_latency` warms it up, then times each call with `time.perf_counter_ns` (garbage collection
paused, as `timeit` does) and summarizes the times. A median over 200+ runs is stable to a few percent; single runs
and short series are not. Torch is imported when a network is measured, not with this module (the command line
shows the backends without it).
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.core.errors import InvalidOptionError

if TYPE_CHECKING:
    import torch
    from torch import nn


class Backend(StrEnum):
    """How the network runs: PyTorch eager, or its ONNX export in onnxruntime (needs the ``export`` extra)."""

    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"


@dataclass(frozen=True)
class Latency:
    """Summary of the times of ``runs`` inferences (milliseconds) after ``warmup`` untimed ones."""

    backend: Backend
    threads: int
    runs: int
    warmup: int
    median_ms: float
    mean_ms: float
    min_ms: float
    p10_ms: float
    p90_ms: float
    iqr_ms: float

    @classmethod
    def from_times(cls, times_ns: Sequence[int], *, backend: Backend, threads: int, warmup: int) -> Latency:
        """The summary of per-run times given in nanoseconds."""
        ms = np.asarray(times_ns, dtype=np.float64) / 1e6
        p10, p25, p50, p75, p90 = np.percentile(ms, [10, 25, 50, 75, 90])
        return cls(
            backend=backend,
            threads=threads,
            runs=len(ms),
            warmup=warmup,
            median_ms=float(p50),
            mean_ms=float(ms.mean()),
            min_ms=float(ms.min()),
            p10_ms=float(p10),
            p90_ms=float(p90),
            iqr_ms=float(p75 - p25),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (the backend as its name)."""
        return {**asdict(self), "backend": self.backend.value}


Runner = Callable[[], object]


@contextmanager
def _torch_runner(module: nn.Module, x: torch.Tensor, threads: int) -> Iterator[Runner]:
    """Eager PyTorch in eval and inference mode with ``threads`` intra-op threads (restored afterwards)."""
    import torch

    from nas.deploy.export import eval_mode

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with eval_mode(module), torch.inference_mode():
            yield lambda: module(x)
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _onnxruntime_runner(module: nn.Module, x: torch.Tensor, threads: int) -> Iterator[Runner]:
    """The module exported to ONNX, in an onnxruntime CPU session with ``threads`` intra-op threads, sequential."""
    from nas.deploy.export import INPUT_NAME, export_onnx, import_extra

    ort = import_extra("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(module, tuple(x.shape[1:]), Path(tmp) / "model.onnx")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {INPUT_NAME: x.numpy()}
    yield lambda: session.run(None, feed)


_RUNNERS: dict[Backend, Callable[[nn.Module, torch.Tensor, int], AbstractContextManager[Runner]]] = {
    Backend.TORCH: _torch_runner,
    Backend.ONNXRUNTIME: _onnxruntime_runner,
}


def _check_count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidOptionError(f"{name} must be an integer >= {minimum}; got {value!r}")


def _time_calls(run: Runner, runs: int, warmup: int) -> list[int]:
    """Nanoseconds of each of ``runs`` calls of ``run``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    times = [0] * runs
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(runs):
            start = time.perf_counter_ns()
            run()
            times[i] = time.perf_counter_ns() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def measure_latency(
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    backend: str | Backend = Backend.TORCH,
    runs: int = 200,
    warmup: int = 20,
    threads: int = 1,
) -> Latency:
    """Time batch-1 inferences of ``module`` on this machine's CPU, one at a time, on a fixed seeded input.

    Args:
        module: the network (float32, on the CPU); its training flags are restored afterwards.
        input_shape: the shape of one sample, without the batch, e.g. ``(3, 32, 32)``.
        backend: ``"torch"`` (eager) or ``"onnxruntime"`` (exported with `export_onnx` to a temporary file).
        runs: number of timed inferences.
        warmup: number of untimed inferences before them.
        threads: intra-op threads of the backend; torch's setting is restored afterwards.

    Example:
        >>> lat = measure_latency(nn.Linear(8, 2), (8,), runs=50, warmup=5)
        >>> lat.min_ms <= lat.median_ms <= lat.p90_ms
        True
    """
    try:
        chosen = Backend(backend)
    except ValueError:
        raise InvalidOptionError(
            f"unknown latency backend {backend!r}; choose one of {', '.join(b.value for b in Backend)}"
        ) from None
    _check_count("runs", runs, 1)
    _check_count("warmup", warmup, 0)
    _check_count("threads", threads, 1)
    from nas.deploy.export import random_input  # and with it torch

    x = random_input(input_shape, batch=1)
    with _RUNNERS[chosen](module, x, threads) as run:
        times = _time_calls(run, runs, warmup)
    return Latency.from_times(times, backend=chosen, threads=threads, warmup=warmup)
