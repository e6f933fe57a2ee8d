"""Kendall tau of every registered predictor on NAS-Bench-201, for several training sizes and the three datasets.

Runs ``nas bench predictors`` for each combination and prints one JSON line each, then a Markdown table for
docs/BENCHMARKS.md:

    .venv/bin/python benchmarks/predictor_ranking.py --data-dir ../shared/data --seeds 10
"""

from __future__ import annotations

import argparse
import json

from nas.analysis.bench import bench_predictors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with the NAS-Bench-201 tables [NAS_DATA_DIR]")
    parser.add_argument("--datasets", default="cifar10,cifar100,imagenet16-120")
    parser.add_argument("--train-sizes", default="50,100,200,500")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets.split(","):
        for size in (int(s) for s in args.train_sizes.split(",")):
            row = bench_predictors(args.data_dir, dataset, size, args.seeds)
            print(json.dumps(row), flush=True)
            rows.append(row)
    names = list(rows[0]["kendall_tau"])
    print(f"\n| dataset | N | {' | '.join(names)} |\n|---|---|{'---|' * len(names)}")
    for row in rows:
        taus = " | ".join(f"{row['kendall_tau'][n]['mean']:.3f}" for n in names)
        print(f"| {row['dataset']} | {row['train_size']} | {taus} |")
    fit_seconds = {n: round(rows[-1]["fit_seconds"][n]["mean"], 2) for n in names}
    print(f"\nmean fit seconds, last row: {json.dumps(fit_seconds)}")


if __name__ == "__main__":
    main()
