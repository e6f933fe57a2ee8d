"""The process-tree watchdog: what started while it ran is killed at its end, orphans included; what ran before
is spared."""

from __future__ import annotations

import os
import subprocess
import time

import psutil

from nas.search.runners._reaper import Reaper


def ended(process: psutil.Process, timeout_s: float = 10) -> bool:
    """Whether ``process`` ends (or is a zombie) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_closing_kills_the_descendants_started_since_and_spares_the_older_ones():
    older = subprocess.Popen(["sleep", "60"])
    time.sleep(0.1)  # start times are to the clock tick: the reaper's must come later
    try:
        with Reaper(interval_s=0.05):
            child = subprocess.Popen(["sh", "-c", "sleep 60 & wait"])  # a child and a grandchild
            while not (grandchildren := psutil.Process(child.pid).children()):
                time.sleep(0.01)
        assert child.wait(timeout=10) == -9
        assert ended(grandchildren[0])
        assert older.poll() is None
    finally:
        older.kill()
        older.wait()


def test_the_mark_finds_a_descendant_orphaned_before_it_was_seen():
    with Reaper(interval_s=60):  # no look between the first and the last
        shell = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
        orphan = psutil.Process(int(shell.stdout))
        assert orphan.ppid() != os.getpid()
    assert ended(orphan)
