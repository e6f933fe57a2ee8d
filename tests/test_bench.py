"""`nas bench nb201`: the contract's JSON and the figures' definitions, on the real table with small budgets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.analysis.bench import Problem, Run, Scorer, bench_nb201, search
from nas.cli.app import main
from nas.core.evaluation import Objective
from nas.core.pareto import pareto_mask
from nas.search.strategies import RandomStrategy


@pytest.fixture(scope="module")
def pixel3(data_dir):
    return Problem.nb201(str(data_dir), "cifar10", [Objective.parse("accuracy"), Objective.parse("latency:pixel3")])


def test_single_objective_rows(data_dir):
    rows = bench_nb201(str(data_dir), "cifar100", ["accuracy"], "all", budget=12, seeds=2)
    names = {r["strategy"] for r in rows}
    assert {"random", "evolution", "local-search"} <= names
    for row in rows:
        assert {"benchmark", "dataset", "objectives", "strategy", "budget", "seeds", "final_regret", "curve"} <= set(
            row
        )
        assert row["objectives"] == ["accuracy"] and len(row["curve"]) == 12
        assert 0 <= row["final_regret"]["mean"] <= 73.513 and row["curve"][-1] == pytest.approx(
            row["final_regret"]["mean"]
        )
        assert all(a >= b for a, b in zip(row["curve"], row["curve"][1:], strict=False))  # best so far only improves


def test_search_counts_distinct_architectures(pixel3):
    run = search(pixel3, RandomStrategy(pixel3.evaluator.space, pixel3.objectives, seed=0), budget=40)
    assert len(run.found) == len(set(run.found)) == 40 and run.values.shape == (40, 2)


def test_the_true_front_scores_one(pixel3):
    scorer = Scorer(pixel3)
    assert len(scorer.front) == 44  # the data's SOURCE.md: 44 Pareto points for CIFAR-10 accuracy vs pixel3 latency
    mask = pareto_mask(pixel3.values, pixel3.directions)
    front = Run([a for a, m in zip(pixel3.archs, mask, strict=True) if m], pixel3.values[mask], [])
    assert scorer.curve(front)[-1] == pytest.approx(1.0) and scorer.front_recovery(front) == 1.0
    worst = int(np.argmin(pixel3.values[:, 0]))
    assert scorer.curve(Run([pixel3.archs[worst]], pixel3.values[[worst]], []))[-1] == 0.0


def test_cli_json_and_errors(data_dir, capsys):
    args = ["bench", "nb201", "--data-dir", str(data_dir), "--objectives", "accuracy,macs", "--strategy", "random"]
    with pytest.raises(SystemExit) as done:
        main([*args, "--budget", "20", "--seeds", "2", "--json"])
    row = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and row["objectives"] == ["accuracy", "macs"]
    assert 0 < row["hv_ratio"]["median"] <= 1 and 0 <= row["front_recovery"]["median"] <= 1
    with pytest.raises(SystemExit) as done:
        main(["bench", "nb201", "--data-dir", str(data_dir), "--objectives", "macs"])
    assert done.value.code == 2 and "objectives are accuracy" in capsys.readouterr().err
