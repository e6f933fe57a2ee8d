"""One writer per run: the lease a search holds in its store, refused while held, taken over from a dead holder."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest

import nas
from nas.search.lease import RunLease

HOLD = "import sys, nas; nas.RunLease(sys.argv[1], 'demo').acquire(); print('held', flush=True); sys.stdin.read()"


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def holder(url):
    """Another process holding the lease of run ``demo``."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline() == "held\n"
        yield process
    finally:
        process.kill()
        process.communicate()


def _set(tmp_path, **columns) -> None:
    """Change the lease row as that of a search elsewhere would look."""
    with closing(sqlite3.connect(tmp_path / "store.db")) as db, db:
        db.execute(f"UPDATE nas_run_leases SET {', '.join(f'{k} = ?' for k in columns)}", tuple(columns.values()))


def test_a_held_run_is_refused_naming_its_holder_and_free_again_once_released(url):
    with RunLease(url, "demo"):
        with pytest.raises(nas.RunLockedError, match=rf"host {socket.gethostname()}, pid {os.getpid()}, since 20"):
            RunLease(url, "demo").acquire()
        with RunLease(url, "other"):  # another run of the same store is free
            pass
    with RunLease(url, "demo") as lease:
        lease.check()


def test_a_live_holder_in_another_process_is_refused_and_a_killed_one_taken_over_at_once(url, holder):
    with pytest.raises(nas.RunLockedError, match=rf"pid {holder.pid}, since"):
        RunLease(url, "demo").acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with RunLease(url, "demo") as lease:  # same host, no such process: no need to wait for the expiry
        assert lease.holder().token == lease.token


def test_a_silent_holder_elsewhere_is_taken_over_after_the_expiry_and_learns_it(url, tmp_path):
    first = RunLease(url, "demo", heartbeat_s=3600)
    first.acquire()
    try:
        _set(tmp_path, host="elsewhere", heartbeat=time.time())
        with pytest.raises(nas.RunLockedError, match="host elsewhere"):
            RunLease(url, "demo", expiry_s=60).acquire()
        _set(tmp_path, heartbeat=time.time() - 120)
        with RunLease(url, "demo", expiry_s=60):
            assert not first.renew()
            with pytest.raises(nas.RunLockedError, match="was taken over by another search .* this search stopped"):
                first.check()
    finally:
        first.release()
