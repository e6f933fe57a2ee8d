"""`nas search` in process: the store, the budget, resuming exactly, refusing to mix runs, kills and Ctrl-C."""

from __future__ import annotations

import io
import signal
import subprocess
import sys

import optuna
import pytest
from rich.console import Console

import nas
from nas.config import load_config
from nas.errors import InvalidOptionError
from nas.experiment import run_search
from nas.progress import SearchProgress

NAS = [sys.executable, "-m", "nas"]


def _ids(run: nas.Run) -> list[str]:
    return [r.arch_id for r in run.store.results()]


def test_a_search_stores_each_evaluation_once_as_an_optuna_trial(tmp_path, write_config):
    config = load_config(write_config(tmp_path))
    run = run_search(config, tmp_path / "runs", progress=False)
    ids = _ids(run)
    assert len(ids) == 30 == len(set(ids))
    assert (tmp_path / "runs" / "table" / "config.yaml").is_file()
    study = optuna.load_study(study_name="table", storage=f"sqlite:///{tmp_path / 'runs' / 'table' / 'store.db'}")
    assert [t.user_attrs["arch_id"] for t in study.trials] == ids
    first = study.trials[0]
    assert first.values == [first.user_attrs["metrics"]["accuracy"], first.user_attrs["costs"]["latency_ms:pixel3"]]
    assert {"macs", "params"} <= set(first.user_attrs["costs"])
    assert first.user_attrs["macs"] == first.user_attrs["costs"]["macs"]
    assert first.user_attrs["latency_ms:pixel3"] == first.values[1]
    assert first.user_attrs["provenance"]["evaluator"] == "nb201-table"


def test_the_same_seed_gives_the_same_search(tmp_path, write_config):
    config = load_config(write_config(tmp_path))
    first = _ids(run_search(config, tmp_path / "a", progress=False))
    assert _ids(run_search(config, tmp_path / "b", progress=False)) == first


def test_a_resumed_search_continues_exactly_where_it_stopped(tmp_path, write_config):
    path = write_config(tmp_path)
    straight = _ids(run_search(load_config(path), tmp_path / "straight", progress=False))
    run_search(load_config(path, budget={"evaluations": 12}), tmp_path / "split", progress=False)
    resumed = _ids(run_search(load_config(path), tmp_path / "split", resume=True, progress=False))
    assert resumed == straight


def test_a_run_is_neither_overwritten_nor_resumed_by_mistake(tmp_path, write_config):
    path = write_config(tmp_path)
    run_search(load_config(path, budget={"evaluations": 8}), tmp_path, progress=False)
    with pytest.raises(InvalidOptionError, match="exists .* --resume"):
        run_search(load_config(path), tmp_path, progress=False)
    with pytest.raises(InvalidOptionError, match="nothing to resume"):
        run_search(load_config(path, name="other"), tmp_path, resume=True, progress=False)
    changed = load_config(path, objectives=["accuracy", "params"])
    with pytest.raises(InvalidOptionError, match="objectives=.*start a new run"):
        run_search(changed, tmp_path, resume=True, progress=False)
    assert len(nas.load_run(tmp_path / "table").store.results()) == 8  # nothing lost by the refusals


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["killed", "ctrl-c"])
def test_a_stopped_search_loses_nothing_and_resumes(tmp_path, write_config, digits_training, wait_for_trials, stop):
    path = write_config(tmp_path, **digits_training, budget={"evaluations": 10}, execution={"address": "local"})
    command = [*NAS, "search", str(path), "--out", str(tmp_path), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_trials(tmp_path / "digits" / "store.db", 3, process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert "--resume" in stderr and "Traceback" not in stderr
    before = _ids(nas.load_run(tmp_path / "digits"))
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    after = _ids(nas.load_run(tmp_path / "digits"))
    assert after[: len(before)] == before
    assert len(after) == 10 == len(set(after))


def test_a_bad_config_exits_2_naming_the_key(tmp_path, write_config):
    bad = write_config(tmp_path, budget={"evaluations": 0}, execution={"adress": "auto"})
    result = subprocess.run([*NAS, "search", str(bad), "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "budget.evaluations: got 0" in result.stderr
    assert "execution.adress: unknown key" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "table").exists()


def test_progress_shows_the_best_values_and_the_front_size(tmp_path, write_config):
    run = run_search(load_config(write_config(tmp_path, budget={"evaluations": 12})), tmp_path, progress=False)
    output = io.StringIO()
    with SearchProgress(run.objectives, 12, console=Console(file=output, width=200)) as progress:
        progress.update(run.store.results()[:6])
        progress.update(run.store.results()[6:])
    front = run.pareto()
    assert progress.done == 12
    assert progress.summary() == (
        f"best accuracy {front['accuracy'].max():.4g}, latency:pixel3 {front['latency:pixel3'].min():.4g} "
        f"| front {len(front)}"
    )
    assert "12/12" in output.getvalue() and progress.summary() in output.getvalue()
