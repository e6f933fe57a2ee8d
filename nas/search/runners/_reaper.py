"""A process-tree watchdog: what a process starts dies with it, even when it is killed with SIGKILL.

`Reaper` starts a small watchdog process that records, every ``interval_s``, the descendants of this process born
since the watchdog started; while the reaper is open, what this process starts also carries a mark of it in its
environment (`MARK`). When this process closes the reaper, exits or dies (its pipe to the watchdog closes), the
watchdog kills the recorded processes still alive, their descendants and the marked processes, then exits: the mark
finds the descendants orphaned before they were recorded. A process that was already running when the reaper
started is never touched, and a recorded pid that was reused since is told apart by its start time.

Why: an embedded Ray's raylet dies with its driver, but its agents, re-parented to init, run on for a minute or more.

Example:
    >>> with Reaper():  # doctest: +SKIP
    ...     start_helpers()  # killed at the end of the block, or when this process dies
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import subprocess
import sys

import psutil

#: The environment variable that marks the processes started while a reaper is open; its value names the reaper.
MARK = "NAS_REAPER"


class Reaper:
    """A watchdog process for the descendants this process starts from now on (see the module's docstring).

    Args:
        interval_s: how often the watchdog records the descendants; one born and orphaned between two looks is
            found by its mark only.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        # -P and a file, not -m: importing the nas package would cost seconds (torch). A session of its own: Ctrl-C
        # in a terminal and a signal to the process group reach this process and its helpers, never the watchdog.
        self._token, self._outer = secrets.token_hex(8), os.environ.get(MARK)
        command = [sys.executable, "-P", __file__, str(os.getpid()), str(interval_s), self._token]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, start_new_session=True)
        os.environ[MARK] = self._token

    def close(self, timeout_s: float = 10.0) -> None:
        """Kill what is left of the recorded descendants, and wait for the watchdog to end."""
        if os.environ.get(MARK) == self._token:
            os.environ.pop(MARK)
            if self._outer is not None:
                os.environ[MARK] = self._outer
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:  # never seen; a stuck watchdog must not hang this process
            self._process.kill()

    def __enter__(self) -> Reaper:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def watch(parent: int, interval_s: float, token: str) -> None:
    """Record ``parent``'s descendants younger than this process until standard input ends or ``parent`` dies; then
    kill those still alive, their descendants, and the processes younger than this one marked with ``token``."""
    if os.getppid() != parent:
        return  # it died before this process started: nothing to tell its descendants by
    me, root = psutil.Process(), psutil.Process(parent)
    seen: dict[int, psutil.Process] = {}  # a psutil process knows its start time: kill() spares a reused pid
    done = False
    while True:  # one look more once done: what a parent that closed the reaper started since the last one
        seen |= {p.pid: p for p in _tree(root) if p.pid != me.pid and _born_after(p, me)}
        if done:
            break
        # The parent never writes: stdin becomes readable at EOF only, when its end of the pipe closes.
        done = os.getppid() != parent or bool(select.select([sys.stdin], [], [], interval_s)[0])
    alive = [p for p in seen.values() if p.is_running()] + _marked(token, me)
    # All found before any is killed: a killed parent's children move to init, out of reach of _tree.
    targets = {p.pid: p for survivor in alive for p in [survivor, *_tree(survivor)]}
    for process in targets.values():
        with contextlib.suppress(psutil.Error):
            process.kill()


def _tree(process: psutil.Process) -> list[psutil.Process]:
    """The descendants of ``process`` (none once it is gone)."""
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def _marked(token: str, me: psutil.Process) -> list[psutil.Process]:
    """The processes younger than ``me`` whose environment holds the mark ``token``."""
    marked = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if _born_after(process, me) and process.environ().get(MARK) == token:
                marked.append(process)
    return marked


def _born_after(process: psutil.Process, other: psutil.Process) -> bool:
    """Whether ``process`` started after ``other``, or at the same time (to the clock tick)."""
    try:
        return process.create_time() >= other.create_time()
    except psutil.Error:
        return False


if __name__ == "__main__":
    watch(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
