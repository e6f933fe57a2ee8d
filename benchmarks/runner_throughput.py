"""Runner throughput: NAS-Bench-201 table evaluations per second in process, through `LocalRunner` and through
`RayRunner` on an embedded Ray, and what the whole `run_search` path (store included) sustains.

Usage: python benchmarks/runner_throughput.py --data-dir ../shared/data [--evaluations 20000] [--batch-size 16,64,256]
       [--workers 1,2] [--repeats 3] [--search-evaluations 3000] [--json]

What is measured, on one `nb201-table` evaluator (CIFAR-10, latency on pixel3):

- The loop: a minimal in-memory `Loop` that hands out a fixed list of ``--evaluations`` cells in order and keeps the
  results in a list. The cells are drawn uniformly with replacement from the 15,625 (seed 0) before any timing: no
  strategy, no store, no deduplication runs inside the timed part, so the figures are the runner's.
- ``inprocess``: a plain loop of ``evaluator.evaluate(batch)`` over the list, per batch size (the ceiling).
- ``local``: `LocalRunner(batch_size=B).run(loop, ...)`.
- ``ray``: `RayRunner(address=None, workers=W, batch_size=B).run(loop, ...)`. Ray is started once beforehand with
  `ray.init` (the arguments and environment of `nas.search.runners.ray`; its time is ``ray_init_s``), so each
  ``run()`` reuses it: its time covers creating the W actors, each loading the table (about 0.6 s), and streaming the
  batches. ``first_result_s`` is the time to the first recorded batch, ``steady`` the rate after it.
- ``search``: `run_search` on the same evaluator with the random strategy (deduplicating), the SQLite store in a
  temporary run directory, ``--search-evaluations`` evaluations, once in process (``execution.address: local``) and
  once on the embedded Ray (2 workers, batch 64). The methods of the search loop and the store are timed while it runs
  (wrapped in this process only), to show where the time goes: ``ResultStore.add`` is one Optuna ``add_trial`` per
  evaluation.

Each configuration is timed ``--repeats`` times, the configurations interleaved within a repeat (so that other work
on the machine slows all of them alike); the median is reported, with the minimum and maximum.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from _machine import machine

import nas
from evaluators.tabular import NB201TableEvaluator
from nas.core.evaluation import EvalResult, Objective
from nas.search.config import ExperimentConfig
from nas.search.experiment import Experiment, Search, run_search
from nas.search.runners import EvaluatorSpec, LocalRunner
from nas.search.runners import ray as nas_ray  # sets RAY_ENVIRONMENT before Ray is imported
from nas.search.store import ResultStore

ray = nas_ray.ray
DATASET, DEVICE = "cifar10", "pixel3"


class ListLoop:
    """A `Loop` over a fixed list of architectures: ``propose`` hands out the next ones, ``record`` keeps results."""

    def __init__(self, archs: Sequence[nas.Architecture]) -> None:
        self.archs, self.next = archs, 0
        self.primary = Objective("accuracy", "max")
        self.results: list[EvalResult] = []
        self.first_record: float | None = None
        self.first_batch = 0

    def propose(self, n: int) -> list[nas.Architecture]:
        batch = list(self.archs[self.next : self.next + n])
        self.next += len(batch)
        return batch

    def record(self, results: Sequence[EvalResult]) -> None:
        if self.first_record is None:
            self.first_record, self.first_batch = time.perf_counter(), len(results)
        self.results.extend(results)


def timed_run(archs: Sequence[nas.Architecture], run: Callable[[ListLoop], None]) -> dict[str, float]:
    """Run ``run(loop)`` over ``archs``: its wall time, rate, time to the first result and rate after it."""
    loop = ListLoop(archs)
    start = time.perf_counter()
    run(loop)
    end = time.perf_counter()
    if len(loop.results) != len(archs) or not all(r.ok for r in loop.results):
        raise RuntimeError(f"{len(loop.results)} results of {len(archs)}, some failed: the run is broken")
    first = (loop.first_record or end) - start
    after = len(archs) - loop.first_batch
    return {
        "wall_s": end - start,
        "evals_per_s": len(archs) / (end - start),
        "first_result_s": first,
        "steady_evals_per_s": after / (end - start - first) if after and end - start > first else float("nan"),
    }


def inprocess(evaluator: NB201TableEvaluator, batch_size: int) -> Callable[[ListLoop], None]:
    def run(loop: ListLoop) -> None:
        for start in range(0, len(loop.archs), batch_size):
            loop.record(evaluator.evaluate(loop.archs[start : start + batch_size]))

    return run


def summary(samples: list[dict[str, float]]) -> dict[str, Any]:
    """Median of each figure over the repeats, with the min and max of the rate."""
    rates = [s["evals_per_s"] for s in samples]
    return {
        **{key: statistics.median(s[key] for s in samples) for key in samples[0]},
        "evals_per_s_min": min(rates),
        "evals_per_s_max": max(rates),
        "repeats": len(samples),
    }


class Timers:
    """Wraps methods of classes with timers for the duration of a ``with`` block (this process only)."""

    def __init__(self, methods: dict[str, tuple[type, str]]) -> None:
        self.methods = methods
        self.seconds = dict.fromkeys(methods, 0.0)
        self.calls = dict.fromkeys(methods, 0)
        self._saved: list[tuple[type, str, Any]] = []

    def __enter__(self) -> Timers:
        for key, (cls, name) in self.methods.items():
            original = cls.__dict__[name]
            self._saved.append((cls, name, original))
            function = original.__func__ if isinstance(original, classmethod) else original

            @functools.wraps(function)
            def wrapper(*args: Any, _key: str = key, _function: Any = function, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return _function(*args, **kwargs)
                finally:
                    self.seconds[_key] += time.perf_counter() - start
                    self.calls[_key] += 1

            setattr(cls, name, classmethod(wrapper) if isinstance(original, classmethod) else wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, name, original in reversed(self._saved):
            setattr(cls, name, original)


def search(data_dir: str, evaluations: int, address: str | None, workers: int, batch_size: int) -> dict[str, Any]:
    """Time `run_search` with the random strategy and the SQLite store; where its time goes."""
    config = ExperimentConfig.model_validate(
        {
            "name": "runner-throughput",
            "space": {"name": "nb201"},
            "dataset": {"name": DATASET, "data_dir": data_dir},
            "evaluator": {"name": "nb201-table", "options": {"devices": [DEVICE]}},
            "objectives": ["accuracy", f"latency:{DEVICE}"],
            "strategy": {"name": "random"},
            "budget": {"evaluations": evaluations},
            "execution": {"address": address, "workers": workers, "batch_size": batch_size},
        }
    )
    timers = Timers(
        {
            "wire (space, evaluator, table load)": (Experiment, "wire"),
            "open store": (ResultStore, "create"),
            "propose (strategy ask, dedup)": (Search, "propose"),
            "record (store, strategy tell)": (Search, "record"),
            "  of which ResultStore.add": (ResultStore, "add"),
        }
    )
    with tempfile.TemporaryDirectory() as out, timers:
        start = time.perf_counter()
        run = run_search(config, out, progress=False)
        wall = time.perf_counter() - start
        stored = len(run.store.results())
    loop = sum(timers.seconds[k] for k in timers.methods if not k.startswith(("  ", "wire", "open")))
    setup = timers.seconds["wire (space, evaluator, table load)"] + timers.seconds["open store"]
    return {
        "address": address or "embedded Ray",
        "workers": workers,
        "batch_size": batch_size,
        "evaluations": stored,
        "wall_s": wall,
        "evals_per_s": stored / wall,
        "ms_per_eval": 1000 * wall / stored,
        "seconds": {**timers.seconds, "the rest (runner: evaluation, Ray round trips, waiting)": wall - setup - loop},
        "calls": timers.calls,
        "store_add_ms_per_eval": 1000 * timers.seconds["  of which ResultStore.add"] / stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with the NAS-Bench-201 tables (default NAS_DATA_DIR)")
    parser.add_argument("--evaluations", type=int, default=20_000, help="table evaluations per timed run")
    parser.add_argument("--batch-size", default="16,64,256", help="architectures per batch, comma-separated")
    parser.add_argument("--workers", default="1,2", help="Ray workers, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--search-evaluations", type=int, default=3_000, help="evaluations of each run_search (0: skip it)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_size.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    if min(args.evaluations, args.repeats, *batch_sizes, *workers) < 1 or args.search_evaluations < 0:
        parser.error("--evaluations, --repeats, --batch-size and --workers must be positive")
    load_start = os.getloadavg()
    context = nas.create_context("nb201-table", "nb201", nas.DataSpec(DATASET, args.data_dir))
    spec = EvaluatorSpec("nb201-table", context, {"devices": [DEVICE]})
    evaluator = spec.create()
    assert isinstance(evaluator, NB201TableEvaluator)
    cells = evaluator.archs()
    archs = [cells[i] for i in np.random.default_rng(0).integers(0, len(cells), args.evaluations)]

    configs: dict[str, Callable[[ListLoop], None]] = {}
    for b in batch_sizes:
        configs[f"inprocess b={b}"] = inprocess(evaluator, b)
        configs[f"local b={b}"] = functools.partial(LocalRunner(batch_size=b).run, spec=spec, evaluator=evaluator)
    for w in workers:
        for b in batch_sizes:
            runner = nas_ray.RayRunner(None, workers=w, batch_size=b)
            configs[f"ray w={w} b={b}"] = functools.partial(runner.run, spec=spec, evaluator=evaluator)

    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    ray_init_s = time.perf_counter() - start
    try:
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
        for _ in range(args.repeats):
            for name, run in configs.items():
                samples[name].append(timed_run(archs, run))
        searches = []
        if args.search_evaluations:
            searches = [
                search(args.data_dir, args.search_evaluations, "local", 1, 64),
                search(args.data_dir, args.search_evaluations, None, 2, 64),
            ]
    finally:
        start = time.perf_counter()
        ray.shutdown()
        ray_shutdown_s = time.perf_counter() - start
    report: dict[str, Any] = {
        **machine(),
        "ray": ray.__version__,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "evaluator": f"nb201-table ({DATASET}, latency {DEVICE})",
        "loop": "fixed list of cells drawn uniformly with replacement (seed 0), results kept in memory",
        "evaluations": args.evaluations,
        "ray_init_s": ray_init_s,
        "ray_shutdown_s": ray_shutdown_s,
        "results": {name: summary(s) for name, s in samples.items()},
        "search": searches,
    }
    if args.json:
        print(json.dumps(report))
        return
    load = report["load_average"]
    print(
        f"{args.evaluations:,} nb201 table evaluations per run, median of {args.repeats}; {report['cpus']} CPUs, "
        f"Ray {report['ray']}, load average {load['start'][0]:.2f} -> {load['end'][0]:.2f}; "
        f"ray.init {ray_init_s:.2f} s, ray.shutdown {ray_shutdown_s:.2f} s"
    )
    print(f"{'configuration':18s} {'evals/s':>9s} {'(min-max)':>17s} {'wall s':>7s} {'first s':>8s} {'steady/s':>9s}")
    for name, r in report["results"].items():
        print(
            f"{name:18s} {r['evals_per_s']:>9,.0f} ({r['evals_per_s_min']:>7,.0f}-{r['evals_per_s_max']:>7,.0f}) "
            f"{r['wall_s']:>7.2f} {r['first_result_s']:>8.3f} {r['steady_evals_per_s']:>9,.0f}"
        )
    for s in searches:
        print(
            f"\nrun_search, {s['address']}, {s['workers']} worker(s), batch {s['batch_size']}: {s['evaluations']:,} "
            f"evaluations in {s['wall_s']:.1f} s = {s['evals_per_s']:,.0f}/s ({s['ms_per_eval']:.2f} ms each)"
        )
        for part, seconds in s["seconds"].items():
            print(f"  {part:58s} {seconds:7.2f} s  {1000 * seconds / s['evaluations']:6.2f} ms/eval")


if __name__ == "__main__":
    main()
