"""Training evaluations through the Ray runner: the per-trial overhead of Ray Tune, and the speed-up of 2 workers
over 1.

Usage: python benchmarks/training_runner.py [--trials 12] [--epochs 1] [--speedup-trials 12] [--speedup-epochs 2]
       [--repeats 1] [--json]

The `train` evaluator trains macro-cnn architectures on the embedded digits data (1x8x8, 10 classes; 1,079
training and 359 validation images), one torch thread per evaluation (what the experiment wiring sets from
``resources: {cpu: 1}``). The architectures are a fixed seeded sample (``space.sample_many(n, 0)``), handed out in
order by a minimal in-memory `Loop` (no strategy, no store), so every run trains the same architectures.
`RayRunner(address=None, scheduler="fifo", resources={"cpu": 1})` runs each architecture as one Ray Tune trial on
reused actors (``reuse_actors`` is always on). Ray is started once beforehand with `ray.init` (the arguments and
environment of `nas.search.runners.ray`); its start-up is apart (``ray_init_s``), and every ``run()`` reuses it.

- overhead: ``--trials`` architectures at ``--epochs`` (1: a single fidelity step, so each trial trains once) on
  1 worker. Overhead per trial = (wall time of ``run()`` - the sum of the results' ``provenance.wall_time_s``) / N:
  Tune's set-up, the first actor's start (a process that imports torch and loads the data), scheduling, reporting.
  ``steady`` is the median gap between consecutive trials minus the later trial's training time, i.e. the overhead
  of a trial on an actor that is already running.
- speed-up: ``--speedup-trials`` architectures at ``--speedup-epochs`` on 1 worker, then the same on 2 workers, in
  this process one after the other; the ratio of the wall times of ``run()``, and the ratio after the start-up
  (each wall time less its ``first_trial_overhead_s``: Tune's set-up and the actors' start, which 2 workers pay
  for 2 actors at once). ``machine_busy_cores`` is the CPU time the whole machine was busy during the run, per
  second, ``own_cores`` the part of it used by this process and its descendants (Ray; sampled every 0.25 s), and
  ``other_cores`` the rest: cores that other work on the machine took from the run. Under the fifo scheduler each
  trial trains once, at the full fidelity.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

import torch
from _machine import machine

import nas
from nas.core.evaluation import EvalResult, Objective
from nas.search.runners import EvaluatorSpec
from nas.search.runners import ray as nas_ray  # sets RAY_ENVIRONMENT before Ray is imported

ray = nas_ray.ray


class ListLoop:
    """A `Loop` over a fixed list of architectures: ``propose`` hands out the next ones, ``record`` keeps results
    with the time they came back."""

    def __init__(self, archs: Sequence[nas.Architecture]) -> None:
        self.archs, self.next = archs, 0
        self.primary = Objective("accuracy", "max")
        self.results: list[EvalResult] = []
        self.times: list[float] = []

    def propose(self, n: int) -> list[nas.Architecture]:
        batch = list(self.archs[self.next : self.next + n])
        self.next += len(batch)
        return batch

    def record(self, results: Sequence[EvalResult]) -> None:
        now = time.perf_counter()
        self.results.extend(results)
        self.times.extend(now for _ in results)


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (all processes, ours and others'), from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _process_tree_cpu() -> dict[tuple[int, int], float]:
    """CPU seconds (user + system) of this process and each of its descendants, by (pid, start time), from /proc."""
    stats: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        if pid in stats:
            tree[(pid, stats[pid][2])] = stats[pid][1] / os.sysconf("SC_CLK_TCK")
        todo.extend(children.get(pid, []))
    return tree


class OwnCpu:
    """CPU seconds used by this process and its descendants (Ray's processes and workers) during a ``with`` block.

    Ray's raylet ignores SIGCHLD, so an exited worker's time is credited to no parent: the tree is sampled every
    ``interval`` seconds instead, and a process that exits loses at most its last interval.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.seconds = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> OwnCpu:
        self._start = _process_tree_cpu()
        self._last = dict(self._start)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._last.update(_process_tree_cpu())
        self.seconds = sum(cpu - self._start.get(key, 0.0) for key, cpu in self._last.items())

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._last.update(_process_tree_cpu())


def spec_for(epochs: int) -> EvaluatorSpec:
    return EvaluatorSpec("train", nas.create_context("train", "macro-cnn", "digits"), {"epochs": epochs})


def run(archs: Sequence[nas.Architecture], epochs: int, workers: int) -> dict[str, Any]:
    """Evaluate ``archs`` at ``epochs`` through the Ray runner on ``workers`` workers: timings and the results."""
    spec = spec_for(epochs)
    evaluator = spec.create()  # the runner asks this one whether it is expensive and for its fidelity steps
    loop = ListLoop(archs)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as workdir:
        runner = nas_ray.RayRunner(None, workers=workers, resources={"cpu": 1}, scheduler="fifo", workdir=workdir)
        busy, start = busy_cpu_seconds(), time.perf_counter()
        with OwnCpu() as own_cpu:
            runner.run(loop, spec, evaluator)
        wall = time.perf_counter() - start
        busy, own = busy_cpu_seconds() - busy, own_cpu.seconds
    if len(loop.results) != len(archs) or not all(r.ok for r in loop.results):
        raise RuntimeError(f"{len(loop.results)} results of {len(archs)}, some failed: the run is broken")
    training = [r.provenance.wall_time_s for r in loop.results]
    gaps = [t - s - w for s, t, w in zip(loop.times, loop.times[1:], training[1:], strict=False)]
    return {
        "workers": workers,
        "epochs": epochs,
        "fidelity_steps": [s["epochs"] for s in evaluator.fidelity_steps()],
        "trials": len(archs),
        "wall_s": wall,
        "training_s": sum(training),
        "training_s_per_trial_median": statistics.median(training),
        "overhead_s_per_trial": (wall - sum(training)) / len(archs),
        "first_result_s": loop.times[0] - start,
        "first_trial_overhead_s": loop.times[0] - start - training[0],
        "steady_overhead_s_per_trial": statistics.median(gaps) if workers == 1 and gaps else None,
        "machine_busy_cores": busy / wall,
        "own_cores": own / wall,
        "other_cores": (busy - own) / wall,
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "accuracy": {r.arch_id: r.metrics["accuracy"] for r in loop.results},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="trials of the overhead run (1 worker)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the overhead run")
    parser.add_argument("--speedup-trials", type=int, default=12, help="trials of each speed-up run (0: skip)")
    parser.add_argument("--speedup-epochs", type=int, default=2, help="epochs of the speed-up runs")
    parser.add_argument("--repeats", type=int, default=1, help="speed-up pairs (the order alternates)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if min(args.trials, args.epochs, args.speedup_epochs, args.repeats) < 1 or args.speedup_trials < 0:
        parser.error("--trials, --epochs, --speedup-epochs and --repeats must be positive")
    space = spec_for(1).context.space  # the space the workers' evaluators build
    load_start = os.getloadavg()
    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    ray_init_s = time.perf_counter() - start
    try:
        overhead = run(space.sample_many(args.trials, 0), args.epochs, 1)
        pairs = []
        if args.speedup_trials:
            archs = space.sample_many(args.speedup_trials, 0)
            for repeat in range(args.repeats):
                order = (1, 2) if repeat % 2 == 0 else (2, 1)
                runs = {w: run(archs, args.speedup_epochs, w) for w in order}
                pairs.append(
                    {
                        "order": list(order),
                        "one": runs[1],
                        "two": runs[2],
                        "speedup": runs[1]["wall_s"] / runs[2]["wall_s"],
                        "speedup_after_startup": (runs[1]["wall_s"] - runs[1]["first_trial_overhead_s"])
                        / (runs[2]["wall_s"] - runs[2]["first_trial_overhead_s"]),
                        "identical_results": runs[1]["accuracy"] == runs[2]["accuracy"],
                    }
                )
    finally:
        start = time.perf_counter()
        ray.shutdown()
        ray_shutdown_s = time.perf_counter() - start
    report: dict[str, Any] = {
        **machine(),
        "ray": ray.__version__,
        "torch": torch.__version__,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "space": "macro-cnn (1x8x8, 10 classes)",
        "dataset": "digits",
        "ray_init_s": ray_init_s,
        "ray_shutdown_s": ray_shutdown_s,
        "overhead": overhead,
        "speedup": pairs,
        "speedup_median": statistics.median(p["speedup"] for p in pairs) if pairs else None,
        "speedup_after_startup_median": statistics.median(p["speedup_after_startup"] for p in pairs) if pairs else None,
    }
    if args.json:
        print(json.dumps(report))
        return
    load = report["load_average"]
    o = overhead
    print(
        f"{report['cpus']} CPUs, Ray {report['ray']}, torch {report['torch']}, load average {load['start'][0]:.2f} -> "
        f"{load['end'][0]:.2f}; ray.init {ray_init_s:.2f} s, ray.shutdown {ray_shutdown_s:.2f} s"
    )
    print(
        f"overhead: {o['trials']} trials at {o['epochs']} epoch(s) on 1 worker: run() {o['wall_s']:.1f} s, training "
        f"{o['training_s']:.1f} s -> {o['overhead_s_per_trial']:.2f} s per trial (first trial "
        f"{o['first_trial_overhead_s']:.2f} s, steady {o['steady_overhead_s_per_trial']:.2f} s); cores used by other "
        f"work {o['other_cores']:.2f}"
    )
    for p in pairs:
        one, two = p["one"], p["two"]
        print(
            f"speed-up: {one['trials']} trials at {one['epochs']} epochs (steps {one['fidelity_steps']}): 1 worker "
            f"{one['wall_s']:.1f} s, 2 workers {two['wall_s']:.1f} s -> {p['speedup']:.2f}x, "
            f"{p['speedup_after_startup']:.2f}x after the actors' start-up ({one['first_trial_overhead_s']:.1f} s / "
            f"{two['first_trial_overhead_s']:.1f} s); training s/trial {one['training_s_per_trial_median']:.2f} / "
            f"{two['training_s_per_trial_median']:.2f}; cores used by other work {one['other_cores']:.2f} / "
            f"{two['other_cores']:.2f} (identical results: {p['identical_results']}; order {p['order']})"
        )


if __name__ == "__main__":
    main()
