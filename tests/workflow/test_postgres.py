"""`nas search --storage postgresql+psycopg2://...`: the results in a PostgreSQL database, queried and resumed.

A throw-away PostgreSQL server (the distribution's initdb/pg_ctl, e.g. Debian's ``postgresql`` package) runs per test
module on a free port of 127.0.0.1 with trust authentication. The server refuses to run as root, so under root it
runs as ``nobody`` (``runuser``), in a /tmp folder given to that user.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

import nas
from nas.search.run import STORE_FILE

NAS = [sys.executable, "-m", "nas"]
SERVER_USER = "nobody"


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _server_bin() -> Path | None:
    """The folder of initdb and pg_ctl: the newest /usr/lib/postgresql/VERSION/bin (Debian), else the PATH's."""
    folders = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    )
    folders = [f for f in folders if (f / "initdb").is_file() and (f / "pg_ctl").is_file()]
    if folders:
        return folders[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh database ``nas`` on a PostgreSQL server of its own: its SQLAlchemy URL."""
    server = _server_bin()
    if server is None:
        _skip_or_fail("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    if importlib.util.find_spec("psycopg2") is None:
        _skip_or_fail("no PostgreSQL driver for SQLAlchemy: pip install 'nas-pareto[postgres]'")
    assert server is not None
    as_root = os.getuid() == 0
    if as_root and shutil.which("runuser") is None:
        _skip_or_fail("running as root without runuser: PostgreSQL refuses to run as root")
    as_user = ["runuser", "-u", SERVER_USER, "--"] if as_root else []
    temp = Path(tempfile.mkdtemp(prefix="nas-pg-", dir="/tmp"))  # short: the server's Unix socket lives here
    if as_root:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(temp, user.pw_uid, user.pw_gid)
    data, port = temp / "data", _free_port()

    def pg(*args: str) -> None:
        done = subprocess.run([*as_user, *args], cwd=temp, capture_output=True, text=True, timeout=60)
        log = (temp / "log").read_text() if (temp / "log").is_file() else ""
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}\n{log[-2000:]}"

    try:
        pg(str(server / "initdb"), "-D", str(data), "-U", "nas", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {temp} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg(str(server / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(temp / "log"), "-w", "-t", "60", "start")
        pg(str(server / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "nas", "nas")
        yield f"postgresql+psycopg2://nas@127.0.0.1:{port}/nas"
    finally:
        if (data / "postmaster.pid").is_file():
            subprocess.run(
                [*as_user, str(server / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                cwd=temp,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(temp, ignore_errors=True)


#: The search each test runs: the table evaluator (see conftest.py), random strategy.
SEARCH = {"strategy": {"name": "random"}, "budget": {"evaluations": 20}, "execution": {"batch_size": 4}}


def _nas(*args: str) -> str:
    done = subprocess.run([*NAS, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"nas {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def _search(config: Path, url: str, out: Path, *extra: str) -> None:
    _nas("search", str(config), "--storage", url, "--address", "local", "--out", str(out), "--no-progress", *extra)


def _arch_ids(url: str, name: str) -> list[str]:
    study = optuna.load_study(study_name=name, storage=url)
    return [t.user_attrs["arch_id"] for t in study.trials]


def test_a_search_stores_its_results_in_postgresql(tmp_path, data_dir, write_config, postgres_url):
    _search(write_config(tmp_path, name="pg", **SEARCH), postgres_url, tmp_path)
    ids = _arch_ids(postgres_url, "pg")
    assert len(ids) == 20 == len(set(ids))
    assert not (tmp_path / "pg" / STORE_FILE).exists()  # the run directory keeps no store of its own
    front = json.loads(_nas("query", "--storage", postgres_url, "--name", "pg", "--pareto", "--format", "json"))
    assert front and {row["arch_id"] for row in front} <= set(ids)
    assert all(row["status"] == "ok" and row["accuracy"] > 0 and row["latency:pixel3"] > 0 for row in front)
    assert [row["arch_id"] for row in front] == list(nas.load_run(tmp_path / "pg").pareto()["arch_id"])


def test_a_search_resumes_with_its_results_in_postgresql(tmp_path, data_dir, write_config, postgres_url):
    config = write_config(tmp_path, name="pg-resumed", **SEARCH)
    _search(config, postgres_url, tmp_path)
    first = _arch_ids(postgres_url, "pg-resumed")
    _search(config, postgres_url, tmp_path, "--resume", "--max-evals", "30")
    ids = _arch_ids(postgres_url, "pg-resumed")
    assert len(first) == 20 and ids[:20] == first
    assert len(ids) == 30 == len(set(ids))
    assert len(nas.load_run(tmp_path / "pg-resumed").store.results()) == 30


def test_one_search_writes_a_run_in_postgresql_at_a_time(tmp_path, write_config, postgres_url, spawn):
    """The lease lives in the database, so it holds across machines: a second search of the run is refused while the
    first one writes it."""
    config = write_config(tmp_path, name="pg-leased", **{**SEARCH, "budget": {"evaluations": 100_000}})
    command = [*NAS, "search", str(config), "--storage", postgres_url, "--address", "local", "--out", str(tmp_path)]
    first = spawn([*command, "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while _stored(postgres_url, "pg-leased") < 20:
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.1)
    second = subprocess.run([*command, "--resume", "--no-progress"], capture_output=True, text=True, timeout=600)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert f"is being written by another search (host {socket.gethostname()}, pid {first.pid}" in second.stderr
    assert first.poll() is None
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=600) == 130
    ids = _arch_ids(postgres_url, "pg-leased")
    assert len(ids) == len(set(ids)) >= 20
    _search(config, postgres_url, tmp_path, "--resume", "--max-evals", str(len(ids) + 5))  # the lease was given back
    assert len(set(_arch_ids(postgres_url, "pg-leased"))) == len(ids) + 5


def _stored(url: str, name: str) -> int:
    """Trials stored so far (0 while the run does not exist yet)."""
    try:
        return len(nas.ResultStore.open(url, name).records())
    except nas.MissingDataError:
        return 0
