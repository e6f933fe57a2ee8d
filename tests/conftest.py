"""Shared fixtures: the third-party data directory (``NAS_DATA_DIR``, default ../shared/data), contexts for
evaluators, a plugin of the tests' own."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import nas

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder; missing data fails under CI and skips elsewhere."""
    path = Path(os.environ.get("NAS_DATA_DIR", REPO.parent / "shared" / "data")).resolve()  # tests change folders
    if not (path / "nats_bench_tss_csv").is_dir():
        message = f"third-party data not found at {path} (set NAS_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _measured_cost(space: nas.SearchSpace, arch: nas.Architecture) -> nas.Cost:
    """MACs (FlopCounterMode's total // 2) and parameters of the built module, on one input of the task's shape."""
    model = space.build(arch).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        logits = model(torch.zeros(1, *space.input_shape))
    assert logits.shape == (1, space.num_classes)
    return nas.Cost(counter.get_total_flops() // 2, sum(p.numel() for p in model.parameters()))


@pytest.fixture(scope="session")
def measured_cost() -> Callable[[nas.SearchSpace, nas.Architecture], nas.Cost]:
    """What the cost model must equal: the built module's counted MACs and parameters."""
    return _measured_cost


@pytest.fixture(scope="session")
def make_context() -> Callable[..., nas.EvaluatorContext]:
    """``make_context(evaluator, space, data="digits", **kwargs)``: `nas.create_context` on one thread (the tests
    share the machine) unless told."""

    def make(
        evaluator: str, space: str | nas.SearchSpace, data: str | nas.DataSpec = "digits", **kwargs: object
    ) -> nas.EvaluatorContext:
        return nas.create_context(evaluator, space, data, **{"threads": 1, **kwargs})  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def nb201_table(data_dir: Path, make_context: Callable[..., nas.EvaluatorContext]) -> Callable[..., nas.Evaluator]:
    """``nb201_table(dataset="cifar10", **options)``: the ``nb201-table`` evaluator of a NAS-Bench-201 dataset, on the
    nb201 space of its task."""

    def make(dataset: str = "cifar10", **options: object) -> nas.Evaluator:
        context = make_context("nb201-table", "nb201", nas.DataSpec(dataset, str(data_dir)))
        return nas.create_evaluator("nb201-table", context, **options)

    return make


#: A plugin file that is installed nowhere: it registers an evaluator of NAS-Bench-201 cells (``{name}``) whose
#: metric, ``convs``, is how many convolutions a cell has; its results record the plugin's file and the process.
#: With ``fails_on_workers`` its constructor raises on a Ray worker (in a process where Ray is running).
PLUGIN = """
import os
import sys

import nas


@nas.register_evaluator({name!r})
class ConvCount(nas.Evaluator):
    expensive = {expensive}

    def __init__(self, context, options):
        if {fails_on_workers} and "ray" in sys.modules and sys.modules["ray"].is_initialized():
            raise RuntimeError("this evaluator refuses to run on a Ray worker")
        self.space = context.space

    def figures(self):
        return (nas.Figure("convs", nas.Direction.MAX), *self.space.figures())

    def evaluate(self, archs, budget=None):
        details = {{"plugin_file": __file__, "pid": os.getpid()}}
        return [
            nas.EvalResult(
                arch,
                {{"convs": float(sum("conv" in op for op in arch.choices.values()))}},
                self.space.cost(arch).to_dict(),
                nas.Provenance({name!r}, details=details),
            )
            for arch in archs
        ]
"""


def _write_plugin(
    path: Path, name: str = "conv-count", *, expensive: bool = False, fails_on_workers: bool = False
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PLUGIN.format(name=name, expensive=expensive, fails_on_workers=fails_on_workers))
    return path


def _plugin_config(name: str, evaluator: str = "conv-count", **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": name,
        "space": {"name": "nb201"},
        "evaluator": {"name": evaluator},
        "objectives": ["max:convs", "macs"],
        "strategy": {"name": "random"},
        "budget": {"evaluations": 12},
        "export": {"top": 0},
    }
    return {**config, **overrides}


@pytest.fixture(scope="session")
def write_plugin() -> Callable[..., Path]:
    """Write the tests' plugin (`PLUGIN`) to ``path``: ``write_plugin(path, name, expensive=, fails_on_workers=)``."""
    return _write_plugin


@pytest.fixture(scope="session")
def plugin_config() -> Callable[..., dict[str, Any]]:
    """An experiment config (as a dict) searching NAS-Bench-201 with the plugin's evaluator ``evaluator``:
    ``plugin_config(name, evaluator, **top_level_keys)``."""
    return _plugin_config
