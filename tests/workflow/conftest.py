"""Configs of small real searches, shared by the workflow tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture(scope="session")
def nas_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the ``nas`` command line in a subprocess and capture what it prints."""

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "nas", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, timeout=600)

    return run


@pytest.fixture(scope="session")
def write_config(data_dir: Path) -> Callable[..., Path]:
    """Write an experiment config (the table evaluator on NAS-Bench-201 unless told otherwise) and return its path."""

    def write(folder: Path, **overrides: Any) -> Path:
        config: dict[str, Any] = {
            "name": "table",
            "seed": 0,
            "space": {"name": "nb201"},
            "dataset": {"name": "cifar10", "data_dir": str(data_dir)},
            "evaluator": {"name": "nb201-table", "options": {"devices": ["pixel3"]}},
            "objectives": ["accuracy", "latency:pixel3"],
            "strategy": {"name": "evolution"},
            "budget": {"evaluations": 30},
            "execution": {"address": "local", "batch_size": 4},
            "export": {"top": 0},
        }
        config.update(overrides)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{config['name']}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write


@pytest.fixture(scope="session")
def digits_training() -> dict[str, Any]:
    """Config keys of a quick training search on the embedded digits data (about 0.3 s per architecture)."""
    return {
        "name": "digits",
        "space": {"name": "macro-cnn", "options": {"input_shape": [1, 8, 8], "num_classes": 10}},
        "dataset": {"name": "digits"},
        "evaluator": {"name": "train", "options": {"epochs": 2, "fraction": 0.3}},
        "objectives": ["accuracy", "macs"],
        "strategy": {"name": "random"},
    }


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start a process in a session of its own; when the test ends, however it ends, the process and everything in
    its session are killed."""
    started: list[subprocess.Popen] = []

    def start(command: list[str | Path], **options: Any) -> subprocess.Popen:
        process = subprocess.Popen([str(c) for c in command], start_new_session=True, **options)
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def _stored_ids(store: Path) -> list[str]:
    """The arch_id of every trial in the store, in order, read without writing (none while it has no tables): opening
    it with Optuna could race the search creating them."""
    if not store.is_file():
        return []
    try:
        with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT a.value_json FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                "AND a.key = 'arch_id' ORDER BY t.number"
            ).fetchall()
    except sqlite3.OperationalError:  # the tables are not created yet
        return []
    return [json.loads(value) for (value,) in rows]


@pytest.fixture(scope="session")
def stored_ids() -> Callable[[Path], list[str]]:
    """The arch_id of every trial of a (running) search's SQLite store, in order."""
    return _stored_ids


@pytest.fixture(scope="session")
def wait_for_trials() -> Callable[..., None]:
    """Wait until the store of a search running in ``process`` holds ``count`` trials."""

    def wait(store: Path, count: int, process: subprocess.Popen, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while len(_stored_ids(store)) < count:
            assert process.poll() is None, f"the search ended before {count} trials: {process.communicate()}"
            assert time.monotonic() < deadline, f"fewer than {count} trials after {timeout} s"
            time.sleep(0.05)

    return wait
