"""Cost-model throughput: analytic cost evaluations per second, on one core.

Usage: python benchmarks/cost_throughput.py [--repeats 7] [--json]

For each space, the architectures are made first (nb201: all 15,625 cells; the others: 5,000 samples); the
figure is the number of ``space.cost(arch)`` calls per second, median over the repeats, with the process pinned
to one CPU core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import nas

SPACES = {
    "nb201": {"input_shape": (3, 32, 32), "num_classes": 10},
    "macro-cnn": {"input_shape": (1, 28, 28), "num_classes": 10},
    "resnet20-pooling": {"input_shape": (1, 28, 28), "num_classes": 10},
}


def throughput(space: nas.SearchSpace, repeats: int) -> dict[str, float]:
    """Cost evaluations per second over a fixed set of architectures (median and min over ``repeats``)."""
    archs = list(space.enumerate()) if space.size() <= 20_000 else space.sample_many(5_000, 0)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for arch in archs:
            space.cost(arch)
        rates.append(len(archs) / (time.perf_counter() - start))
    return {"archs": len(archs), "per_second_median": statistics.median(rates), "per_second_min": min(rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    results = {name: throughput(nas.create_space(name, **task), args.repeats) for name, task in SPACES.items()}
    if args.json:
        print(json.dumps({"machine": platform.processor() or platform.machine(), "results": results}))
        return
    for name, r in results.items():
        rate, low = r["per_second_median"], r["per_second_min"]
        print(f"{name:18s} {rate:>10,.0f} costs/s (min {low:,.0f}; {r['archs']:,} archs)")


if __name__ == "__main__":
    main()
