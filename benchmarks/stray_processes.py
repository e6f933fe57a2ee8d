"""Stray processes: what an embedded Ray leaves running when `nas search` is killed with SIGKILL.

Usage: python benchmarks/stray_processes.py [--cycles 10] [--after 30] [--delay 3] [--seed 0] [--without-reaper]
       [--json]

Each cycle starts ``nas search CONFIG --out runs --no-progress`` in a new temporary folder, on a training search
(macro-cnn on the embedded digits data, random strategy, 40 evaluations, ``execution: {workers: 2}``: an embedded
local Ray running Tune trials). Once the store holds a first trial, it waits a further random 0 to ``--delay``
seconds (seeded), so that the kill falls at different points of the trials, records the driver's descendants (Ray's
processes and the reaper), sends SIGKILL to the driver alone (not its process group) and, ``--after`` seconds later,
counts the strays: those descendants, and any descendant of theirs, still running (zombies aside: here pid 1 may not
reap them). It also reports how long after the kill the last of them ended (polled every 0.1 s, up to ``--after``),
and which still ran 2 s after it.
Every stray is then killed, so cycles do not add up.

``--without-reaper`` runs the same search with the reaper replaced by a no-op (in the driver only): the figure
without it, for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import yaml
from _machine import machine

CONFIG: dict[str, Any] = {
    "name": "digits",
    "seed": 0,
    "space": {"name": "macro-cnn", "options": {"input_shape": [1, 8, 8], "num_classes": 10}},
    "dataset": {"name": "digits"},
    "evaluator": {"name": "train", "options": {"epochs": 2, "fraction": 0.3}},
    "objectives": ["accuracy", "macs"],
    "strategy": {"name": "random"},
    "budget": {"evaluations": 40},
    "execution": {"workers": 2},
    "export": {"top": 0},
}

#: The driver without the reaper: `nas` with `Reaper` replaced by a no-op before the search starts.
WITHOUT_REAPER = (
    "import contextlib, sys; import nas.search.runners.ray as r; r.Reaper = contextlib.nullcontext; "
    "from nas.cli.app import main; sys.argv[0] = 'nas'; main()"
)


def trials(store: Path) -> int:
    """How many trials the store holds (0 before its tables exist)."""
    if not store.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM trials").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` that still run, with their descendants, zombies aside."""
    found: dict[int, psutil.Process] = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.is_running():
                found |= {p.pid: p for p in [process, *process.children(recursive=True)]}
    alive = []
    for process in found.values():
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


def cycle(folder: Path, delay_s: float, after_s: float, with_reaper: bool) -> dict[str, Any]:
    """One search started, killed once it has a trial and ``delay_s`` more, and its strays counted."""
    config = folder / "digits.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    nas = ["-m", "nas"] if with_reaper else ["-c", WITHOUT_REAPER]
    command = [sys.executable, *nas, "search", config.name, "--out", "runs", "--no-progress"]
    with (folder / "output.txt").open("w") as output:
        driver = subprocess.Popen(command, cwd=folder, stdout=output, stderr=subprocess.STDOUT)
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while trials(folder / "runs" / "digits" / "store.db") < 1:
            if driver.poll() is not None or time.monotonic() > deadline:
                output = (folder / "output.txt").read_text()
                raise RuntimeError(f"the search ended or stalled before its first trial:\n{output}")
            time.sleep(0.2)
        time.sleep(delay_s)
        tree = psutil.Process(driver.pid).children(recursive=True)
        driver.kill()
        killed = time.monotonic()
        driver.wait()
        ended_s, late = None, None
        while time.monotonic() - killed < after_s:
            if ended_s is None and not running(tree):
                ended_s = time.monotonic() - killed
            if late is None and time.monotonic() - killed > 2:
                late = sorted(p.name() for p in running(tree))
            time.sleep(0.1)
        strays = running(tree)
        return {
            "descendants": len(tree),
            "strays": len(strays),
            "stray_names": sorted(p.name() for p in strays),
            "all_ended_after_s": None if ended_s is None else round(ended_s, 2),
            "running_2s_after": late,
            "delay_s": round(delay_s, 2),
        }
    finally:
        driver.kill()
        driver.wait()
        for process in running(tree):
            with contextlib.suppress(psutil.Error):
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--after", type=float, default=30.0, help="seconds between the kill and the count")
    parser.add_argument("--delay", type=float, default=3.0, help="most seconds after the first trial to kill")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--without-reaper", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    for index in range(args.cycles):
        with tempfile.TemporaryDirectory(prefix="strays-") as folder:
            row = cycle(Path(folder), rng.uniform(0, args.delay), args.after, not args.without_reaper)
        rows.append(row)
        if not args.json:
            print(
                f"cycle {index + 1}: {row['descendants']} descendants at the kill (after {row['delay_s']} s more), "
                f"{row['strays']} strays {args.after:g} s later {row['stray_names']}, "
                f"all ended {row['all_ended_after_s']} s after the kill (running 2 s after: {row['running_2s_after']})",
                flush=True,
            )
    summary = {
        **machine(),
        "reaper": not args.without_reaper,
        "cycles": len(rows),
        "strays": sum(r["strays"] for r in rows),
        "rows": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['cycles']} kills -> {summary['strays']} strays {args.after:g} s later")


if __name__ == "__main__":
    main()
