"""Training-evaluator throughput: architectures per hour for resnet20-pooling on Fashion-MNIST, and the validation
accuracy they reach, at the quickstart fidelity and at a higher one.

Usage: python benchmarks/train_throughput.py --data-dir ../shared/data [--archs 8] [--high-archs 3] [--json]

One `train` evaluator holds 8,000 stratified training examples and 1,000 validation examples of Fashion-MNIST
(1x28x28, 10 classes); the architectures are resnet20-pooling samples drawn with seed 0, each trained from scratch:

- quickstart: 1 epoch on a quarter of them (2,000 examples), budget ``{"epochs": 1, "fraction": 0.25}``: seconds
  per architecture, so that a whole search of a few dozen architectures fits in the quickstart's 5 minutes on
  2 cores;
- higher: 2 epochs on all 8,000, budget ``{"epochs": 2, "fraction": 1.0}`` (8x the training steps).

Architectures per hour = 3600 x architectures / wall time of the ``evaluate`` call (training, BatchNorm
recalibration and validation; the data is loaded once beforehand). The CPU seconds per architecture (all threads of
the process) are reported too: with ``--threads 1`` they are the figure least disturbed by other work on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import torch
from _machine import machine

import nas
from evaluators.training import TrainEvaluator, available_cpus

FIDELITIES = {
    "quickstart": {"epochs": 1, "fraction": 0.25},
    "higher": {"epochs": 2, "fraction": 1.0},
}
TRAIN_SIZE, VAL_SIZE = 8_000, 1_000


def measure(evaluator: TrainEvaluator, archs: list[nas.Architecture], budget: dict[str, float]) -> dict[str, Any]:
    """Evaluate ``archs`` at ``budget`` once: throughput, per-architecture time and accuracy."""
    start, cpu_start = time.perf_counter(), time.process_time()
    results = evaluator.evaluate(archs, budget)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    ok = [r for r in results if r.ok]
    accuracy = [r.metrics["accuracy"] for r in ok]
    return {
        **budget,
        "train_examples": results[0].provenance.details["train_examples"],
        "val_examples": results[0].provenance.details["val_examples"],
        "archs": len(archs),
        "failed": len(results) - len(ok),
        "wall_s": elapsed,
        "seconds_per_arch_median": statistics.median(r.provenance.wall_time_s for r in results),
        "archs_per_hour": 3600 * len(archs) / elapsed,
        "cpu_seconds_per_arch": cpu / len(archs),
        "accuracy_mean": statistics.fmean(accuracy) if accuracy else float("nan"),
        "accuracy_min": min(accuracy, default=float("nan")),
        "accuracy_max": max(accuracy, default=float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with fashion_mnist_debian/ (default NAS_DATA_DIR)")
    parser.add_argument("--archs", type=int, default=8, help="architectures at the quickstart fidelity")
    parser.add_argument("--high-archs", type=int, default=3, help="architectures at the higher fidelity")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the CPUs available)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if min(args.archs, args.high_archs) < 1:
        parser.error("--archs and --high-archs must be at least 1")
    load_start = os.getloadavg()[0]  # other work on the machine slows training down: recorded with the figures
    setup = time.perf_counter()
    data = nas.DataSpec("fashion-mnist", args.data_dir, {"train_size": TRAIN_SIZE, "val_size": VAL_SIZE})
    threads = args.threads or available_cpus()
    evaluator = nas.create_evaluator("train", nas.create_context("train", "resnet20-pooling", data, threads=threads))
    assert isinstance(evaluator, TrainEvaluator)
    setup_s = time.perf_counter() - setup
    archs = evaluator.space.sample_many(max(args.archs, args.high_archs), 0)
    counts = {"quickstart": args.archs, "higher": args.high_archs}
    results = {name: measure(evaluator, archs[: counts[name]], budget) for name, budget in FIDELITIES.items()}
    load_end = os.getloadavg()[0]
    report = {
        **machine(),
        "threads": evaluator.threads,
        "torch": torch.__version__,
        "load_average_1min": {"start": load_start, "end": load_end},
        "space": "resnet20-pooling",
        "dataset": "fashion-mnist",
        "setup_s": setup_s,
        "results": results,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"resnet20-pooling on Fashion-MNIST, {report['threads']} threads, torch {report['torch']}, "
        f"1-min load average {load_start:.2f} -> {load_end:.2f}"
    )
    header = ("fidelity", "epochs", "train ex", "archs", "s/arch", "archs/h", "CPU s/arch")
    print(
        f"{header[0]:10s} {header[1]:>6s} {header[2]:>8s} {header[3]:>5s} {header[4]:>7s} {header[5]:>8s} "
        f"{header[6]:>10s}  val accuracy"
    )
    for name, r in results.items():
        print(
            f"{name:10s} {r['epochs']:>6d} {r['train_examples']:>8,d} {r['archs']:>5d} "
            f"{r['seconds_per_arch_median']:>7.1f} {r['archs_per_hour']:>8.0f} {r['cpu_seconds_per_arch']:>10.1f}  "
            f"{r['accuracy_mean']:.3f} ({r['accuracy_min']:.3f}-{r['accuracy_max']:.3f})"
            + (f", {r['failed']} failed" if r["failed"] else "")
        )


if __name__ == "__main__":
    main()
