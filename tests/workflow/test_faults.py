"""Fault injection, through the command line as a user types it: kills at random points, two writers on one run, a
relative ``--out`` under Tune, planted and damaged run files, a locked store, reading a run that is not there."""

from __future__ import annotations

import base64
import json
import os
import pickle
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import psutil
import pytest

import nas
from nas.search.config import load_config
from nas.search.experiment import run_search

NAS = [sys.executable, "-m", "nas"]
#: ``nas search CONFIG`` as the README writes it, from a working directory: the runs go to ``runs/``.
SEARCH = [*NAS, "search", "--out", "runs", "--no-progress"]
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ten_kills_at_random_points_resume_into_the_uninterrupted_search(
    tmp_path, write_config, spawn, wait_for_trials, stored_ids
):
    """SIGKILL (of the search and everything it started) at 10 random points of a 1,000-evaluation search, each
    resumed: the same architectures in the same order as without kills, none lost, none twice (the benchmark
    benchmarks/kill_resume.py does the same at 2,000)."""
    budget = {"evaluations": 1000}
    straight_config = load_config(write_config(tmp_path, name="straight", budget=budget))
    expected = [r.arch_id for r in run_search(straight_config, tmp_path / "runs", progress=False).store.results()]
    config = write_config(tmp_path, name="killed", budget=budget)
    store = tmp_path / "runs" / "killed" / "store.db"
    for cycle, target in enumerate(sorted(random.Random(0).sample(range(20, 980), 10))):
        process = spawn([*SEARCH, config.name, *(["--resume"] if cycle else [])], cwd=tmp_path)
        wait_for_trials(store, target, process)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    resumed = subprocess.run(
        [*SEARCH, config.name, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "1000 evaluations (1000 ok, 0 failed, 0 pruned)" in resumed.stdout
    assert stored_ids(store) == expected


def test_a_second_search_on_a_run_is_refused_at_once_naming_the_first(
    tmp_path, write_config, spawn, wait_for_trials, stored_ids
):
    config = write_config(tmp_path, budget={"evaluations": 100_000})  # runs until it is stopped
    first = spawn([*SEARCH, config.name], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = tmp_path / "runs" / "table" / "store.db"
    wait_for_trials(store, 20, first)
    second = subprocess.run(
        [*SEARCH, config.name, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 2
    assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    holder = f"host {socket.gethostname()}, pid {first.pid}, since"
    assert f"is being written by another search ({holder}" in second.stderr
    assert first.poll() is None  # the first one writes on
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=600) == 130
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) >= 20
    budget = str(len(ids) + 10)  # the first search gave its lease back: the run can be continued
    third = subprocess.run([*SEARCH, config.name, "--resume", "--max-evals", budget], cwd=tmp_path, timeout=600)
    assert third.returncode == 0 and len(stored_ids(store)) == len(set(stored_ids(store))) == int(budget)


def test_a_relative_out_under_tune_keeps_every_training(tmp_path):
    """The README's own command, from a working directory: each Tune trial runs in a folder of its own, yet every
    trained network lands in the run folder, and nothing fails."""
    result = subprocess.run(
        [*NAS, "search", str(REPO / "experiments" / "quickstart.yaml"), "--out", "runs", "--max-evals", "4"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    run = nas.load_run(tmp_path / "runs" / "quickstart")
    results = run.store.results()
    assert len(results) == 4 and not [r for r in results if r.status is nas.Status.FAILED]
    assert " 0 failed" in result.stdout
    weights = sorted((tmp_path / "runs" / "quickstart" / "weights").glob("*.pt"))
    assert [p.stem for p in weights] == sorted(r.arch_id for r in results)  # one per training, ASHA-stopped too
    assert {r.provenance.details["weights"] for r in results} == {str(p) for p in weights}
    (exported,) = (tmp_path / "runs" / "quickstart" / "export").iterdir()
    assert (exported / "state_dict.pt").is_file() and (exported / "model.onnx").is_file()


class _Planted:
    """What an attacker pickles: unpickling it runs a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, ...]:
        return os.system, (self.command,)


def test_a_planted_pickle_runs_nothing_and_a_damaged_store_is_one_line(tmp_path, write_config):
    """A run folder on a shared file system may be written by anyone: nothing the project reads back is
    unpickled. An old ``search.json`` holding a pickle is not read; a store whose architecture is replaced by one
    is refused with one line."""
    config = write_config(tmp_path, strategy={"name": "optuna", "options": {"sampler": "tpe"}})
    assert subprocess.run([*NAS, "search", config.name, "--out", "runs"], cwd=tmp_path, timeout=600).returncode == 0
    marker = tmp_path / "pwned"
    payload = base64.b64encode(pickle.dumps(_Planted(f"touch {marker}"))).decode()
    run_dir = tmp_path / "runs" / "table"
    (run_dir / "search.json").write_text(json.dumps({"strategy": {"inner": {"study": payload}}}))
    env = dict(os.environ)
    command = [*NAS, "search", config.name, "--out", "runs", "--resume", "--max-evals", "40", "--no-progress"]
    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert len(nas.load_run(run_dir).store.results()) == 40 and not marker.exists()
    with closing(sqlite3.connect(run_dir / "store.db")) as db, db:
        db.execute("UPDATE trial_user_attributes SET value_json = ? WHERE key = 'arch'", (json.dumps(payload),))
    for args in (["search", config.name, "--out", "runs", "--resume", "--max-evals", "50"], ["query", "runs/table"]):
        refused = subprocess.run([*NAS, *args], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
        assert refused.returncode == 2 and not marker.exists()
        assert refused.stderr.startswith("error: trial 0 of run 'table'") and "is damaged" in refused.stderr
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr


@pytest.fixture(scope="module")
def finished(tmp_path_factory, write_config) -> Path:
    """A working directory holding a finished table search in ``runs/table``."""
    cwd = tmp_path_factory.mktemp("finished")
    config = write_config(cwd, budget={"evaluations": 6})
    assert subprocess.run([*NAS, "search", config.name, "--out", "runs"], cwd=cwd, timeout=600).returncode == 0
    return cwd


def test_read_commands_never_write(finished):
    store = (finished / "runs" / "table" / "store.db").read_bytes()
    for args in (["query", "runs/table", "--pareto"], ["report", "runs/table"]):
        done = subprocess.run([*NAS, *args], cwd=finished, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    assert (finished / "runs" / "table" / "store.db").read_bytes() == store


def test_read_commands_refuse_a_missing_store_without_creating_one(finished, tmp_path):
    shutil.copytree(finished / "runs", tmp_path / "runs")
    run_dir = tmp_path / "runs" / "table"
    (run_dir / "store.db").unlink()
    for command in ("query", "report", "export", "verify"):
        extra = ["--best"] if command == "export" else []
        refused = subprocess.run([*NAS, command, "runs/table", *extra], cwd=tmp_path, capture_output=True, text=True)
        assert refused.returncode == 2, (command, refused.stderr)
        assert "no result store at" in refused.stderr and "Traceback" not in refused.stderr
        assert not (run_dir / "store.db").exists()
    nowhere = subprocess.run([*NAS, "query", "nowhere"], cwd=tmp_path, capture_output=True, text=True)
    assert nowhere.returncode == 2 and not (tmp_path / "nowhere").exists()


def test_a_locked_store_is_one_line_naming_the_lock(finished):
    with closing(sqlite3.connect(finished / "runs" / "table" / "store.db", isolation_level=None)) as db:
        db.execute("BEGIN EXCLUSIVE")
        refused = subprocess.run([*NAS, "query", "runs/table"], cwd=finished, capture_output=True, text=True)
        db.execute("ROLLBACK")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "database is locked (another process holds a write lock on it" in refused.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "runs/table", "--where", "accuracy==text"], "'text' is not a number"),
        (["query", "runs/table", "--status", "lost"], "Invalid value for '--status'"),
        (["report", "runs/table", "-o", "table.yaml"], "File exists: table.yaml"),
        (["export", "runs/table", "--best", "--untrained", "-o", "/proc/models"], "/proc/models"),
        (["query", "--storage", "mysql://u@h/db"], "mysql"),
    ],
)
def test_bad_arguments_to_read_commands_are_one_line(finished, args, message):
    refused = subprocess.run([*NAS, *args], cwd=finished, capture_output=True, text=True)
    assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_killed_ray_worker_fails_its_batch_for_a_retry_and_the_search_goes_on(
    tmp_path, write_config, spawn, wait_for_trials
):
    config = write_config(tmp_path, budget={"evaluations": 400}, execution={"workers": 2, "batch_size": 8})
    search = spawn([*SEARCH, config.name], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = tmp_path / "runs" / "table" / "store.db"
    wait_for_trials(store, 40, search)
    processes = psutil.Process(search.pid).children(recursive=True)
    actors = [p for p in processes if "ray::_EvaluatorActor" in " ".join(p.cmdline())]
    assert actors, [p.cmdline() for p in processes]
    actors[0].kill()
    stdout, stderr = search.communicate(timeout=900)
    assert search.returncode == 0, stderr
    run = nas.load_run(tmp_path / "runs" / "table")
    lost = [r for r in run.store.results() if r.status is nas.Status.FAILED]
    assert lost and all(r.retryable and r.reason.startswith("the Ray worker failed") for r in lost)
    assert "failed: the Ray worker failed" in stdout  # a resume evaluates them again (test_search.py)
