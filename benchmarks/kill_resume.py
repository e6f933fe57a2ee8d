"""Kill and resume: a search killed with SIGKILL at random points and resumed each time, against the same search
run without interruption; and two searches started on one run.

Usage: python benchmarks/kill_resume.py --data-dir ../shared/data [--evaluations 2000] [--cycles 10]
       [--address local] [--workers 1] [--seed 0] [--json]

The search is ``experiments/nb201_pareto.yaml`` with the evolution strategy and ``--evaluations`` evaluations, run
by ``nas search CONFIG --out runs`` from a temporary working directory (``--address local``: in process; ``none``:
the embedded Ray, with ``--workers`` actors). It runs once without interruption; then a second run is killed
``--cycles`` times, each time once its store holds a random number of trials (seeded, increasing), with SIGKILL to
its whole process group, and resumed with ``--resume`` until it ends. Reported: whether it stored the same
architectures in the same order as the uninterrupted run (and the trials in common before the first difference),
the lost trials (stored at some kill, missing at the end) and the architectures stored twice. Then two
``nas search --resume --max-evals`` of the finished run are started together: reported are the second's exit code
and what it says, and the trials stored for the budget.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import yaml
from _machine import machine

REPO = Path(__file__).resolve().parents[1]
NAS = [sys.executable, "-m", "nas"]


def stored(store: Path) -> list[str]:
    """The arch_id of every stored trial, in order (read-only; empty before the tables exist)."""
    if not store.is_file():
        return []
    try:
        with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT a.value_json FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                "AND a.key = 'arch_id' ORDER BY t.number"
            ).fetchall()
    except sqlite3.OperationalError:
        return []
    return [json.loads(value) for (value,) in rows]


def write_config(folder: Path, name: str, args: argparse.Namespace) -> str:
    config = yaml.safe_load((REPO / "experiments" / "nb201_pareto.yaml").read_text())
    execution = {"workers": args.workers, "batch_size": 4}
    if args.address != "none":
        execution["address"] = args.address
    config.update(
        name=name,
        strategy={"name": "evolution"},
        budget={"evaluations": args.evaluations},
        execution=execution,
        export={"top": 0},
    )
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config))
    return f"{name}.yaml"


def search(cwd: Path, config: str, *extra: str) -> subprocess.Popen:
    command = [*NAS, "search", config, "--out", "runs", "--no-progress", *extra]
    return subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def kill_cycles(cwd: Path, args: argparse.Namespace) -> dict[str, Any]:
    straight = search(cwd, write_config(cwd, "straight", args))
    straight.communicate()
    expected = stored(cwd / "runs" / "straight" / "store.db")
    config, store = write_config(cwd, "killed", args), cwd / "runs" / "killed" / "store.db"
    targets = sorted(random.Random(args.seed).sample(range(10, args.evaluations - 10), args.cycles))
    started, seen = time.perf_counter(), set()
    for cycle, target in enumerate(targets):
        process = search(cwd, config, *(["--resume"] if cycle else []))
        while len(stored(store)) < target and process.poll() is None:
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        seen.update(stored(store))
    last = search(cwd, config, "--resume")
    out, err = last.communicate()
    got = stored(store)
    common = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), min(len(expected), len(got))
    )
    return {
        "evaluations": args.evaluations,
        "cycles": args.cycles,
        "kill_points": targets,
        "final_exit": last.returncode,
        "final_line": (out.strip().splitlines() or err.strip().splitlines() or [""])[0],
        "stored": len(got),
        "identical": got == expected,
        "identical_prefix": common,
        "lost": len(seen - set(got)),
        "duplicated": len(got) - len(set(got)),
        "seconds": time.perf_counter() - started,
    }


def two_writers(cwd: Path, args: argparse.Namespace) -> dict[str, Any]:
    budget = str(args.evaluations + 300)
    first = search(cwd, "killed.yaml", "--resume", "--max-evals", budget)
    store = cwd / "runs" / "killed" / "store.db"
    while len(stored(store)) <= args.evaluations + 5 and first.poll() is None:
        time.sleep(0.02)
    second = search(cwd, "killed.yaml", "--resume", "--max-evals", budget)
    _, second_err = second.communicate()
    first.communicate()
    ids = stored(store)
    return {
        "budget": int(budget),
        "first_exit": first.returncode,
        "second_exit": second.returncode,
        "second_says": second_err.strip(),
        "stored": len(ids),
        "duplicated": len(ids) - len(set(ids)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="the NAS-Bench-201 tables (default NAS_DATA_DIR)")
    parser.add_argument("--evaluations", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--address", default="local", help="local (in process) or none (the embedded Ray)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.data_dir:
        os.environ["NAS_DATA_DIR"] = str(Path(args.data_dir).resolve())
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        row = {
            **machine(),
            "address": args.address,
            "workers": args.workers,
            "kill_resume": kill_cycles(cwd, args),
            "two_writers": two_writers(cwd, args),
        }
    if args.json:
        print(json.dumps(row))
        return
    kills, writers = row["kill_resume"], row["two_writers"]
    print(
        f"{kills['cycles']} SIGKILLs of a {kills['evaluations']}-evaluation search ({args.address}, "
        f"{args.workers} worker(s)): the uninterrupted run's sequence: {kills['identical']} "
        f"({kills['identical_prefix']} of {kills['stored']} trials in common), {kills['lost']} stored trials lost, "
        f"{kills['duplicated']} architectures stored twice; {kills['seconds']:.0f} s"
    )
    print(
        f"two writers: the second exits {writers['second_exit']} ({writers['second_says']}); "
        f"{writers['stored']} trials for a budget of {writers['budget']}, {writers['duplicated']} duplicated"
    )


if __name__ == "__main__":
    main()
