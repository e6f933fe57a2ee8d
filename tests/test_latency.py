"""Latency measurement: both backends, the statistics, thread settings, and the ordering of light and heavy modules."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator

import pytest
import torch
from torch import nn

import nas
from nas.deploy.latency import Backend, Latency, measure_latency

SHAPE = (3, 32, 32)
BACKENDS = [
    "torch",
    pytest.param(
        "onnxruntime",
        marks=pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs the export extra"),
    ),
]


class ThreadProbe(nn.Module):
    """A linear layer that records torch's thread count, grad mode and training flag at each call."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 2)
        self.calls: list[tuple[int, bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.get_num_threads(), torch.is_inference_mode_enabled(), self.training))
        return self.linear(x)


@pytest.fixture
def torch_threads() -> Iterator[int]:
    """Torch set to 2 threads during the test (a value the measurements must restore), then reset."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(previous)


def light() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))


def heavy() -> nn.Module:
    """About 300 M multiply-accumulates at 32x32, 50,000 times the light module's 6 k."""
    return nn.Sequential(
        nn.Conv2d(3, 128, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 2),
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_nb201_statistics_are_positive_and_ordered(backend: str, torch_threads: int) -> None:
    space = nas.create_space("nb201", input_shape=SHAPE, num_classes=10)
    module = space.build(space.sample(0))
    lat = measure_latency(module, SHAPE, backend=backend, runs=15, warmup=2, threads=1)
    assert (lat.backend, lat.threads, lat.runs, lat.warmup) == (Backend(backend), 1, 15, 2)
    assert 0 < lat.min_ms <= lat.p10_ms <= lat.median_ms <= lat.p90_ms
    assert lat.min_ms <= lat.mean_ms and lat.iqr_ms >= 0
    assert torch.get_num_threads() == torch_threads
    assert module.training  # the flags are restored


def test_torch_backend_runs_in_inference_and_eval_mode_with_the_threads_asked(torch_threads: int) -> None:
    probe = ThreadProbe()
    lat = measure_latency(probe, (8,), runs=7, warmup=3, threads=1)
    assert lat.runs == 7 and lat.threads == 1
    assert probe.calls == [(1, True, False)] * 10
    assert torch.get_num_threads() == torch_threads and probe.training


@pytest.mark.parametrize("backend", BACKENDS)
def test_heavy_module_is_slower_than_light_one(backend: str) -> None:
    fast = measure_latency(light(), SHAPE, backend=backend, runs=20, warmup=2)
    slow = measure_latency(heavy(), SHAPE, backend=backend, runs=5, warmup=1)
    assert slow.median_ms > 10 * fast.median_ms


@pytest.mark.parametrize("backend", BACKENDS)
def test_measurement_leaves_the_global_rng_alone(backend: str) -> None:
    module = nn.Linear(8, 2)
    state = torch.get_rng_state()
    measure_latency(module, (8,), backend=backend, runs=3, warmup=0)
    assert torch.equal(torch.get_rng_state(), state)


def test_statistics_from_known_times() -> None:
    lat = Latency.from_times([i * 1_000_000 for i in range(10, 0, -1)], backend=Backend.TORCH, threads=1, warmup=0)
    assert (lat.runs, lat.min_ms, lat.median_ms, lat.mean_ms) == (10, 1.0, 5.5, 5.5)
    assert lat.p10_ms == pytest.approx(1.9) and lat.p90_ms == pytest.approx(9.1) and lat.iqr_ms == pytest.approx(4.5)
    data = lat.to_dict()
    assert data["backend"] == "torch" and type(data["backend"]) is str
    assert json.loads(json.dumps(data)) == data


def test_unknown_backend_lists_the_accepted_ones() -> None:
    with pytest.raises(nas.InvalidOptionError, match=r"unknown latency backend 'tensorrt'; choose one of torch, onnxr"):
        measure_latency(nn.Linear(8, 2), (8,), backend="tensorrt")


@pytest.mark.parametrize(
    ("option", "value"), [("runs", 0), ("runs", 2.5), ("warmup", -1), ("threads", 0), ("threads", True)]
)
def test_bad_counts_are_rejected(option: str, value: object) -> None:
    with pytest.raises(nas.InvalidOptionError, match=rf"{option} must be an integer >= \d; got {value!r}"):
        measure_latency(nn.Linear(8, 2), (8,), **{option: value})  # type: ignore[arg-type]
