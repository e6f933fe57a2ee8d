"""The result store on Optuna's storage: round trip, failed and pruned evaluations, retries, resume checks, reading
without writing, damaged trials, Optuna can open a run."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from wsgiref.util import setup_testing_defaults

import optuna
import pytest

import nas
from nas.search.store import ResultStore


@pytest.fixture(scope="module")
def table(nb201_table):
    return nb201_table("cifar10", devices=["pixel3"])


@pytest.fixture
def objectives():
    return [nas.Objective.parse("max:accuracy"), nas.Objective.parse("min:latency:pixel3")]


def test_round_trip_through_sqlite(tmp_path, table, objectives):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    results = table.evaluate(table.archs()[:20])
    ResultStore.create(url, "demo", table.space, objectives).add(results)
    reopened = ResultStore.create(url, "demo", table.space, objectives)
    assert [r.to_dict() for r in reopened.results()] == [r.to_dict() for r in results]
    frame = reopened.to_dataframe()
    assert {"arch_id", "arch", "accuracy", "macs", "params", "latency_ms:pixel3", "status", "evaluator"} <= set(frame)
    assert frame["accuracy"].tolist() == [r.metrics["accuracy"] for r in results]


def test_optuna_sees_the_objectives_as_trial_values(tmp_path, table, objectives):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    results = table.evaluate(table.archs()[100:105])
    ResultStore.create(url, "demo", table.space, objectives).add(results)
    study = optuna.load_study(study_name="demo", storage=url)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert [t.values for t in study.trials] == [[r.value("accuracy"), r.value("latency:pixel3")] for r in results]
    assert study.trials[0].user_attrs["arch_id"] == results[0].arch_id


def test_failed_and_incomplete_results_are_failed_trials(tmp_path, table, objectives):
    store = ResultStore.create(f"sqlite:///{tmp_path / 'store.db'}", "demo", table.space, objectives)
    ok = table.evaluate(table.archs()[:1])[0]
    failed = nas.EvalResult.failed(table.archs()[1], "training diverged at epoch 2", ok.provenance)
    no_latency = nas.EvalResult(table.archs()[2], {"accuracy": 90.0}, {"macs": 1.0}, ok.provenance)
    store.add([ok, failed, no_latency])
    back = store.results()
    assert [r.ok for r in back] == [True, False, False]
    assert back[1].reason == "training diverged at epoch 2"
    assert back[2].reason == "the evaluation gave no finite value for latency:pixel3"
    states = [t.state for t in store.study.trials]
    assert states[1] == states[2] == optuna.trial.TrialState.FAIL
    assert math.isnan(store.to_dataframe()["accuracy"].iloc[1])


def test_resuming_with_other_objectives_or_space_version_is_refused(tmp_path, table, objectives):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ResultStore.create(url, "demo", table.space, objectives).add(table.evaluate(table.archs()[:3]))
    with pytest.raises(nas.InvalidOptionError, match="was created with objectives=.*start a new run"):
        ResultStore.create(
            url, "demo", table.space, [nas.Objective.parse("max:accuracy"), nas.Objective.parse("min:macs")]
        )

    class NextVersion(type(table.space)):
        version = "2"

    with pytest.raises(nas.InvalidOptionError, match="space_version='1'.*space_version='2'"):
        ResultStore.create(url, "demo", NextVersion(), objectives)
    assert len(ResultStore.create(url, "demo", table.space, objectives).results()) == 3  # nothing lost


def test_optuna_dashboard_opens_a_run(tmp_path, table, objectives):
    dashboard = pytest.importorskip("optuna_dashboard")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ResultStore.create(url, "demo", table.space, objectives).add(table.evaluate(table.archs()[:3]))
    app = dashboard.wsgi(url)

    def get(path):
        environ = {}
        setup_testing_defaults(environ)
        environ["PATH_INFO"] = path
        status = []
        body = b"".join(app(environ, lambda code, headers, *exc_info: status.append(code)))
        assert status == ["200 OK"], (path, status)
        return json.loads(body)

    (study,) = get("/api/studies")["study_summaries"]
    assert study["study_name"] == "demo"
    detail = get(f"/api/studies/{study['study_id']}")
    assert detail["name"] == "demo"
    assert detail["objective_names"] == ["accuracy", "latency:pixel3"]
    assert len(detail["trials"]) == 3


def test_pruned_results_are_pruned_trials_with_the_figures_of_their_fidelity(tmp_path, table, objectives):
    store = ResultStore.create(f"sqlite:///{tmp_path / 'store.db'}", "demo", table.space, objectives)
    (ok,) = table.evaluate(table.archs()[:1])
    store.add([dataclasses.replace(ok, status=nas.Status.PRUNED)])
    (trial,) = store.study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.values == [ok.value("accuracy"), ok.value("latency:pixel3")]
    assert store.results()[0].status is nas.Status.PRUNED and store.to_dataframe()["status"].tolist() == ["pruned"]


def test_an_architecture_evaluated_again_reads_as_its_latest_result(tmp_path, table, objectives):
    store = ResultStore.create(f"sqlite:///{tmp_path / 'store.db'}", "demo", table.space, objectives)
    first, second = table.evaluate(table.archs()[:2])
    lost = nas.EvalResult.failed(first.arch, "the Ray worker failed", first.provenance, retryable=True)
    store.add([lost, second])
    assert store.results()[0].retryable
    store.add([first])
    assert [(r.arch_id, r.ok) for r in store.results()] == [(second.arch_id, True), (first.arch_id, True)]
    assert [r.result.ok for r in store.records()] == [False, True, True]


def test_reading_a_run_writes_nothing_and_refuses_a_missing_or_empty_store(tmp_path, table, objectives):
    missing = tmp_path / "missing.db"
    with pytest.raises(nas.MissingDataError, match="no result store at"):
        ResultStore.open(f"sqlite:///{missing}")
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(nas.MissingDataError, match="no result store at"):
        ResultStore.open(f"sqlite:///{empty}")
    assert empty.stat().st_size == 0
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ResultStore.create(url, "demo", table.space, objectives).add(table.evaluate(table.archs()[:2]))
    before = (tmp_path / "store.db").read_bytes()
    reader = ResultStore.open(url)
    assert len(reader.results()) == 2
    with pytest.raises(nas.StoreError, match="readonly"):
        reader.add(table.evaluate(table.archs()[2:3]))
    assert (tmp_path / "store.db").read_bytes() == before


def test_a_damaged_trial_is_one_clear_error(tmp_path, table, objectives):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = ResultStore.create(url, "demo", table.space, objectives)
    store.add(table.evaluate(table.archs()[:1]))
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute("UPDATE trial_user_attributes SET value_json = ? WHERE key = 'arch'", (json.dumps("gASV..."),))
    with pytest.raises(nas.StoreError, match=r"trial 0 of run 'demo' .* is damaged \(InvalidArchitectureError"):
        ResultStore.open(url).results()
