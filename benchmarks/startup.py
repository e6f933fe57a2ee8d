"""Start-up: wall time of short `nas` commands, side by side with ``python -c "import torch"``.

Usage: python benchmarks/startup.py [--data-dir ../shared/data] [--repeats 5] [--json]

Each command is a fresh ``python -m nas ...`` process (the interpreter of this script, the working directory's
``nas``), timed from start to exit; the commands are interleaved within a repeat, so that other work on the
machine slows all of them alike, and the best (minimum) of ``--repeats`` is reported with the median:

- ``import torch``: ``python -c "import torch"``, the reference;
- ``python``: ``python -c pass``, the interpreter alone;
- ``--help``: ``nas --help``;
- ``unknown key``: ``nas search bad.yaml`` where the config has a key no section takes (exit 2);
- ``unknown objective``: ``nas search bad.yaml`` where an objective is one the evaluator does not produce (exit 2;
  this needs the evaluator, hence the space, hence torch);
- ``query``: ``nas query RUN`` of a small run (30 NAS-Bench-201 table evaluations, SQLite store), made once
  beforehand with ``nas search``; it needs the NAS-Bench-201 tables (``--data-dir``, default ``NAS_DATA_DIR``).

For each, it also records which heavy libraries the command imported (``-X importtime`` in one extra run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _machine import machine

HEAVY = ("torch", "optuna", "sqlalchemy", "pandas", "scipy", "ray", "sklearn")


def config(data_dir: str, **overrides: Any) -> dict[str, Any]:
    """A small table search of NAS-Bench-201 (CIFAR-10, in process), with ``overrides``."""
    return {
        "name": "table",
        "seed": 0,
        "space": {"name": "nb201"},
        "dataset": {"name": "cifar10", "data_dir": data_dir},
        "evaluator": {"name": "nb201-table", "options": {"devices": ["pixel3"]}},
        "objectives": ["accuracy", "latency:pixel3"],
        "strategy": {"name": "evolution"},
        "budget": {"evaluations": 30},
        "execution": {"address": "local", "batch_size": 4},
        "export": {"top": 0},
        **overrides,
    }


def commands(folder: Path, data_dir: str) -> dict[str, tuple[list[str], int]]:
    """Each command's name -> (argv, expected exit status); the run ``nas query`` reads is made here."""
    unknown_key = folder / "unknown-key.yaml"
    unknown_key.write_text(yaml.safe_dump(config(data_dir, colour="blue")))
    unknown_objective = folder / "unknown-objective.yaml"
    unknown_objective.write_text(yaml.safe_dump(config(data_dir, objectives=["accuracy", "energy"])))
    good = folder / "table.yaml"
    good.write_text(yaml.safe_dump(config(data_dir)))
    nas = [sys.executable, "-m", "nas"]
    made = subprocess.run([*nas, "search", str(good), "--out", str(folder / "runs"), "--no-progress"], **QUIET)
    if made.returncode:
        raise SystemExit(f"the run for nas query could not be made:\n{made.stderr}")
    return {
        "import torch": ([sys.executable, "-c", "import torch"], 0),
        "python": ([sys.executable, "-c", "pass"], 0),
        "--help": ([*nas, "--help"], 0),
        "unknown key": ([*nas, "search", str(unknown_key), "--out", str(folder / "refused")], 2),
        "unknown objective": ([*nas, "search", str(unknown_objective), "--out", str(folder / "refused")], 2),
        "query": ([*nas, "query", str(folder / "runs" / "table")], 0),
    }


QUIET: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 600}


def timed(argv: list[str], expected: int) -> float:
    """Seconds from the start to the exit of ``argv``, which must exit with ``expected``."""
    start = time.perf_counter()
    done = subprocess.run(argv, **QUIET)
    seconds = time.perf_counter() - start
    if done.returncode != expected:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}, not {expected}:\n{done.stderr}")
    return seconds


def imported(argv: list[str]) -> list[str]:
    """The heavy libraries among the modules ``argv`` (a Python command) imported."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], **QUIET)
    top = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    return [name for name in HEAVY if name in top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="the NAS-Bench-201 tables (default NAS_DATA_DIR)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data_dir = str(Path(args.data_dir or os.environ.get("NAS_DATA_DIR", "../shared/data")).resolve())
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        chosen = commands(Path(tmp), data_dir)
        times: dict[str, list[float]] = {name: [] for name in chosen}
        for _ in range(args.repeats):
            for name, (argv, expected) in chosen.items():
                times[name].append(timed(argv, expected))
        heavy = {name: imported(argv) for name, (argv, _) in chosen.items()}
    torch_best = min(times["import torch"])
    rows = [
        {
            "command": name,
            "best_s": round(min(seconds), 3),
            "median_s": round(statistics.median(seconds), 3),
            "x_import_torch": round(min(seconds) / torch_best, 2),
            "imports": heavy[name],
        }
        for name, seconds in times.items()
    ]
    load = {"start": load_start, "end": os.getloadavg()}
    summary = {**machine(), "load_average": load, "repeats": args.repeats, "rows": rows}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    start, end = (", ".join(f"{x:.2f}" for x in load[when]) for when in ("start", "end"))
    print(f"{summary['cpus']} CPUs; load average {start} at the start, {end} at the end; best of {args.repeats}")
    print(f"{'command':<18} {'best s':>7} {'median s':>9} {'x torch':>8}  heavy imports")
    for row in rows:
        libraries = ", ".join(row["imports"]) or "none"
        print(
            f"{row['command']:<18} {row['best_s']:>7.3f} {row['median_s']:>9.3f} {row['x_import_torch']:>8.2f}  "
            f"{libraries}"
        )


if __name__ == "__main__":
    main()
