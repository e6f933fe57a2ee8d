"""`nas search` in process: the store, the budget, resuming exactly, refusing to mix runs, kills and Ctrl-C."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from collections import Counter
from typing import ClassVar

import optuna
import pytest
from rich.console import Console

import nas
from nas.core.errors import InvalidOptionError
from nas.search.config import load_config
from nas.search.experiment import run_search
from nas.search.progress import SearchProgress

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


def test_a_search_cut_short_while_storing_a_batch_resumes_exactly(tmp_path, write_config, monkeypatch):
    """A kill between two trials of one batch leaves half a tell in the store: the resumed search evaluates the
    rest of that batch first and tells the strategy the whole batch, as the uninterrupted search did."""
    path = write_config(tmp_path)  # batches of 4
    straight = _ids(run_search(load_config(path), tmp_path / "straight", progress=False))
    add_trial, added = optuna.Study.add_trial, []

    def interrupted(study, trial):
        if len(added) == 14:
            raise KeyboardInterrupt  # after 3 batches and half of the 4th
        added.append(trial)
        add_trial(study, trial)

    monkeypatch.setattr(optuna.Study, "add_trial", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_search(load_config(path), tmp_path / "cut", progress=False)
    monkeypatch.setattr(optuna.Study, "add_trial", add_trial)
    assert len(nas.load_run(tmp_path / "cut" / "table").store.records()) == 14
    assert _ids(run_search(load_config(path), tmp_path / "cut", resume=True, progress=False)) == straight


def test_a_resume_with_another_seed_or_strategy_is_refused_before_anything_runs(tmp_path, write_config):
    path = write_config(tmp_path)
    run_search(load_config(path, budget={"evaluations": 12}), tmp_path, progress=False)
    for changed in (load_config(path, seed=1), load_config(path, strategy={"name": "local-search"})):
        with pytest.raises(InvalidOptionError, match=r"does not replay: its trial \d+ holds \w+, which this strategy"):
            run_search(changed, tmp_path, resume=True, progress=False)
    assert len(nas.load_run(tmp_path / "table").store.results()) == 12


@nas.register_evaluator("flaky-table")
class FlakyTable(nas.Evaluator):
    """The NAS-Bench-201 table, through an unreliable worker: a fifth of the architectures are lost the first time
    (not their fault), another fifth diverge every time."""

    attempts: ClassVar[Counter[str]] = Counter()

    def __init__(self, context: nas.EvaluatorContext, options: nas.Options) -> None:
        self.table = nas.create_evaluator("nb201-table", context, devices=["pixel3"])

    def figures(self) -> tuple[nas.Figure, ...]:
        return self.table.figures()

    def evaluate(self, archs, budget=None):
        results = []
        for result in self.table.evaluate(archs):
            FlakyTable.attempts[result.arch_id] += 1
            kind = int(result.arch_id, 16) % 5
            if kind == 0 and FlakyTable.attempts[result.arch_id] == 1:
                result = nas.EvalResult.failed(result.arch, "the worker died", result.provenance, retryable=True)
            elif kind == 1:
                result = nas.EvalResult.failed(result.arch, "training diverged", result.provenance)
            results.append(result)
        return results


def test_failures_not_of_the_architectures_making_are_retried_once_on_resume(tmp_path, write_config):
    path = write_config(tmp_path, evaluator={"name": "flaky-table"})
    first = run_search(load_config(path), tmp_path, progress=False).store.results()
    lost = {r.arch_id for r in first if r.retryable}
    diverged = {r.arch_id for r in first if r.status is nas.Status.FAILED and not r.retryable}
    assert lost and diverged and len(first) == 30
    resumed = run_search(load_config(path), tmp_path, resume=True, progress=False)
    assert {r.arch_id for r in resumed.store.results() if r.status is nas.Status.FAILED} == diverged
    assert len(resumed.store.records()) == 30 + len(lost)
    assert all(FlakyTable.attempts[a] == 2 for a in lost) and all(FlakyTable.attempts[a] == 1 for a in diverged)
    again = run_search(load_config(path), tmp_path, resume=True, progress=False)
    assert len(again.store.records()) == 30 + len(lost) and "the run was complete already" in again.stop_reason


def test_the_search_says_why_it_stopped(tmp_path, write_config):
    budget = run_search(load_config(write_config(tmp_path, name="budget")), tmp_path, progress=False)
    assert budget.stop_reason == "budget reached (30 of 30 evaluations)"
    timed = write_config(tmp_path, name="timed", budget={"evaluations": 100_000, "wall_time_s": 1.5})
    assert run_search(load_config(timed), tmp_path, progress=False).stop_reason.startswith("wall time reached (")
    dry = write_config(tmp_path, name="dry", objectives=["accuracy", "macs<=1"])  # no cell has so few MACs
    run = run_search(load_config(dry), tmp_path, progress=False)
    assert run.stop_reason == "the strategy has nothing more to propose" and not run.store.results()


def test_an_objective_the_evaluator_does_not_produce_is_refused_before_the_run_exists(tmp_path, write_config, nas_cli):
    path = write_config(tmp_path, objectives=["acuracy", "latency:pixel3"])
    refused = nas_cli("search", path, "--out", tmp_path / "runs")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "objectives: evaluator 'nb201-table' does not produce acuracy; it produces accuracy" in refused.stderr
    assert not (tmp_path / "runs").exists()


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
def test_a_stopped_search_loses_nothing_and_resumes(
    tmp_path, write_config, digits_training, wait_for_trials, spawn, stop
):
    path = write_config(tmp_path, **digits_training, budget={"evaluations": 10}, execution={"address": "local"})
    command = [*NAS, "search", str(path), "--out", str(tmp_path), "--no-progress"]
    process = spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_trials(tmp_path / "digits" / "store.db", 3, process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=600)
    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert "--resume" in stderr and "Traceback" not in stderr
    before = _ids(nas.load_run(tmp_path / "digits"))
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=900)
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
