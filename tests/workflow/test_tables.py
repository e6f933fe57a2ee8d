"""New problems by config alone, as a user types them: a table of their own on the nb201 space, a space given in YAML
and searched through its table, declared directions and units, deduplication from YAML, and benchmarks of a table."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import nas
from nas.search.config import load_config
from nas.search.experiment import Experiment, run_search

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
GRID = {"edge0": OPS, "edge1": OPS, "width": [16, 32]}


def nas_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``nas`` command line run from ``folder``, as a user types it there (in a terminal 200 columns wide)."""
    command = [sys.executable, "-m", "nas", *args]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def analog_accuracy(ops: list[str]) -> float:
    """A made-up metric of a cell: higher with more 3x3 convolutions, lower with more missing edges."""
    return 50.0 + 7 * ops.count("nor_conv_3x3") + 2 * ops.count("nor_conv_1x1") - 6 * ops.count("none")


@pytest.fixture(scope="module")
def nb201_table(tmp_path_factory) -> Path:
    """A table of every nb201 cell and its analog accuracy, keyed by NAS-Bench-201 strings."""
    space = nas.create_space("nb201")
    rows = [(space.to_string(a), analog_accuracy(list(a.choices.values()))) for a in space.enumerate()]
    folder = tmp_path_factory.mktemp("tables")
    pd.DataFrame(rows, columns=["arch_str", "analog_accuracy"]).to_csv(folder / "analog.csv", index=False)
    return folder / "analog.csv"


def write(folder: Path, config: dict[str, Any]) -> str:
    (folder / f"{config['name']}.yaml").write_text(yaml.safe_dump(config))
    return f"{config['name']}.yaml"


def table_config(**changes: Any) -> dict[str, Any]:
    """nb201 searched through the analog table, the file given relative to the working directory."""
    options = {"path": "analog.csv", "key": "arch_str", "key_format": "nb201-string"}
    config = {
        "name": "tab",
        "space": {"name": "nb201"},
        "evaluator": {"name": "table", "options": {**options, "metrics": {"analog_accuracy": "max"}}},
        "objectives": ["analog_accuracy", "params"],
        "strategy": {"name": "evolution"},
        "budget": {"evaluations": 40},
        "execution": {"workers": 2},
    }
    return {**config, **changes}


def test_a_custom_metric_is_maximized_as_declared_on_ray_with_two_workers(tmp_path, nb201_table):
    (tmp_path / "analog.csv").write_bytes(nb201_table.read_bytes())
    config = table_config()
    config["evaluator"]["options"]["units"] = {"analog_accuracy": "percent"}
    searched = nas_in(tmp_path, "search", write(tmp_path, config), "--out", "runs", "--no-progress")
    assert searched.returncode == 0, searched.stderr
    assert "no model exported: the table evaluator looked the results up" in searched.stdout
    resolved = yaml.safe_load((tmp_path / "runs" / "tab" / "config.yaml").read_text())["objectives"]
    assert [(o["name"], o["direction"]) for o in resolved] == [("analog_accuracy", "max"), ("params", "min")]

    front = json.loads(nas_in(tmp_path, "query", "runs/tab", "--pareto", "--format", "json").stdout)
    run = nas.load_run(tmp_path / "runs" / "tab")
    evaluated = run.to_dataframe()["analog_accuracy"]
    table = pd.read_csv(nb201_table)["analog_accuracy"]
    assert front[0]["analog_accuracy"] == evaluated.max() > table.median()  # the best cells, not the worst
    assert {"analog_accuracy", "params", "costs"} <= set(front[0])  # JSON keys are the plain figure names

    shown = nas_in(tmp_path, "query", "runs/tab", "--top", "1", "--sort", "analog_accuracy").stdout
    assert "analog_accuracy [%]" in shown and "params [parameters]" in shown
    rows = list(csv.DictReader(io.StringIO(nas_in(tmp_path, "query", "runs/tab", "--format", "csv").stdout)))
    assert {"analog_accuracy", "params", "macs"} <= set(rows[0]) and len(rows) == 40
    assert run.units == {"analog_accuracy": nas.Unit.PERCENT, "macs": nas.Unit.MACS, "params": nas.Unit.PARAMS}
    page = (tmp_path / "runs" / "tab" / "report" / "index.html").read_text()
    assert "<th>analog_accuracy [%]</th>" in page and "<th>params [parameters]</th>" in page


def test_a_space_given_in_yaml_is_searched_through_its_table(tmp_path):
    space = nas.create_space("categorical", dimensions=GRID)
    rows = [
        {**a.choices, "score": analog_accuracy([a.choices["edge0"], a.choices["edge1"]]) + a.choices["width"]}
        for a in space.enumerate()
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "grid.csv", index=False)
    config = {
        "name": "grid",
        "space": {"name": "categorical", "dimensions": GRID},
        "evaluator": {
            "name": "table",
            "options": {"path": "grid.csv", "key_format": "choices-columns", "metrics": {"score": "max"}},
        },
        "objectives": ["score"],
        "strategy": {"name": "random", "dedup": "arch_id"},
        "budget": {"evaluations": 50},
        "execution": {"workers": 2},
    }
    searched = nas_in(tmp_path, "search", write(tmp_path, config), "--out", "runs", "--no-progress")
    assert searched.returncode == 0, searched.stderr
    assert "no model exported: space 'categorical' builds no networks" in searched.stdout
    best = json.loads(
        nas_in(tmp_path, "query", "runs/grid", "--sort", "score", "--top", "1", "--format", "json").stdout
    )
    assert best[0]["score"] == max(r["score"] for r in rows)  # all 50 architectures were evaluated
    assert best[0]["arch"]["space"] == "categorical" and best[0]["arch"]["version"] == space.version

    refused = nas_in(tmp_path, "export", "runs/grid", "--best")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert (
        refused.stderr == "error: exporting a run needs a space of networks, and space 'categorical' builds none "
        "(it is searched through a table)\n"
    )

    config["space"]["dimensions"] = {**GRID, "width": [16, 32, 64]}  # a changed space does not resume the run
    resumed = nas_in(tmp_path, "search", write(tmp_path, config), "--out", "runs", "--resume", "--no-progress")
    assert resumed.returncode == 2 and "space_version=" in resumed.stderr and "start a new run" in resumed.stderr

    config.update(name="exported", export={"top": 1}, execution={"address": "local"})
    refused = nas_in(tmp_path, "search", write(tmp_path, config), "--out", "runs")
    assert refused.returncode == 2 and "export.top: space 'categorical' builds no networks" in refused.stderr
    assert not (tmp_path / "runs" / "exported").exists()


def test_an_objective_nobody_produces_is_refused_before_the_run_exists(tmp_path, nb201_table):
    (tmp_path / "analog.csv").write_bytes(nb201_table.read_bytes())
    config = table_config(objectives=["analog_acc"], execution={"address": "local"})
    refused = nas_in(tmp_path, "search", write(tmp_path, config), "--out", "runs")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "objectives: evaluator 'table' does not produce analog_acc; it produces analog_accuracy, macs, params" in (
        refused.stderr
    )
    assert not (tmp_path / "runs").exists()


def test_a_direction_against_the_declaration_is_taken_when_explicit(tmp_path, nb201_table):
    config = table_config(objectives=["min:analog_accuracy"], execution={"address": "local"})
    config["evaluator"]["options"]["path"] = str(nb201_table)
    run = run_search(load_config(tmp_path / write(tmp_path, config)), tmp_path / "runs", progress=False)
    assert run.objectives[0].direction is nas.Direction.MIN
    assert run.pareto()["analog_accuracy"].iloc[0] == run.to_dataframe()["analog_accuracy"].min()


@pytest.mark.parametrize("dedup", ["canonical", "arch_id"])
def test_deduplication_is_chosen_in_yaml(tmp_path, nb201_table, dedup):
    strategy = {"name": "random"} if dedup == "canonical" else {"name": "random", "dedup": dedup}  # the default
    config = table_config(strategy=strategy, execution={"address": "local"}, budget={"evaluations": 300})
    config["evaluator"]["options"]["path"] = str(nb201_table)
    loaded = load_config(tmp_path / write(tmp_path, config))
    assert Experiment.wire(loaded, tmp_path).strategy().key.value == dedup
    if dedup == "canonical":  # no two isomorphic cells are evaluated
        archs = [r.arch for r in run_search(loaded, tmp_path / "runs", progress=False).store.results()]
        space = nas.create_space("nb201")
        assert len(archs) == 300 == len({space.canonical(a) for a in archs})


def test_bench_search_scores_a_table_config_against_its_own_front(tmp_path):
    space = nas.create_space("categorical", dimensions=GRID)
    rows = [
        {"key": json.dumps(dict(a.choices)), "score": i % 7, "energy": i % 5} for i, a in enumerate(space.enumerate())
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "grid.csv", index=False)
    config = {
        "name": "grid",
        "space": {"name": "categorical", "dimensions": GRID},
        "evaluator": {
            "name": "table",
            "options": {
                "path": "grid.csv",
                "key": "key",
                "key_format": "arch-json",
                "metrics": {"score": "max"},
                "costs": ["energy"],
            },
        },
        "objectives": ["score"],
        "strategy": {"name": "evolution"},
        "budget": {"evaluations": 50},
    }
    single = nas_in(tmp_path, "bench", "search", write(tmp_path, config), "--seeds", "2", "--json")
    assert single.returncode == 0, single.stderr
    (row,) = [json.loads(line) for line in single.stdout.splitlines()]
    assert (row["benchmark"], row["strategy"], row["budget"], row["objectives"]) == ("grid", "evolution", 50, ["score"])
    assert row["final_regret"]["mean"] == 0  # every architecture evaluated: the table's best is found
    two = nas_in(
        tmp_path,
        "bench",
        "search",
        write(tmp_path, {**config, "objectives": ["score", "energy"]}),
        "--strategy",
        "random",
        "--budget",
        "50",
        "--seeds",
        "1",
        "--json",
    )
    assert two.returncode == 0, two.stderr
    (row,) = [json.loads(line) for line in two.stdout.splitlines()]
    assert row["hv_ratio"]["median"] == pytest.approx(1.0) and row["front_recovery"]["median"] == 1.0
    shown = nas_in(tmp_path, "bench", "search", "grid.yaml", "--seeds", "1", "--budget", "10")  # for people
    assert shown.returncode == 0 and "grid: score,energy, budget 10, 1 seeds" in shown.stdout

    proxy = {**config, "name": "proxy", "space": {"name": "macro-cnn", "input_shape": [1, 8, 8]}}
    proxy.update(evaluator={"name": "zero-cost", "options": {"proxies": ["synflow"]}}, objectives=["synflow"])
    refused = nas_in(tmp_path, "bench", "search", write(tmp_path, proxy))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "a benchmark needs an evaluator that looks every architecture up in a table" in refused.stderr


def test_a_canonical_function_of_a_plugin_file_deduplicates_a_yaml_space_on_ray(tmp_path):
    (tmp_path / "edges.py").write_text(
        "def canonical(choices):\n"
        "    first, second = sorted([choices['edge0'], choices['edge1']])  # the two edges are interchangeable\n"
        "    return {**choices, 'edge0': first, 'edge1': second}\n"
    )
    space = nas.create_space("categorical", dimensions=GRID)
    rows = [{"key": json.dumps(dict(a.choices)), "score": float(i)} for i, a in enumerate(space.enumerate())]
    pd.DataFrame(rows).to_csv(tmp_path / "grid.csv", index=False)
    config = {
        "name": "canon",
        "plugins": ["edges.py"],
        "space": {"name": "categorical", "dimensions": GRID, "canonical": "edges:canonical"},
        "evaluator": {
            "name": "table",
            "options": {"path": "grid.csv", "key": "key", "key_format": "arch-json", "metrics": {"score": "max"}},
        },
        "objectives": ["score"],
        "strategy": {"name": "random"},
        "budget": {"evaluations": 30},  # of the 15 unordered edge pairs x 2 widths
        "execution": {"workers": 2},
    }
    searched = nas_in(tmp_path, "search", write(tmp_path, config), "--out", "runs", "--no-progress")
    assert searched.returncode == 0, searched.stderr
    pairs = [
        (frozenset([r.arch.choices["edge0"], r.arch.choices["edge1"]]), r.arch.choices["width"])
        for r in nas.load_run(tmp_path / "runs" / "canon").store.results()
    ]
    assert len(pairs) == len(set(pairs)) == 30
