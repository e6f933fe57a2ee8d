"""Start-up: what ``import nas`` and the short commands import, checked on ``sys.modules`` in a fresh interpreter.

`nas --help` and a config with a typo must not wait for torch (about 2 s to import here), and `nas query` reads a
run's store without it. The figures are in docs/BENCHMARKS.md (Start-up); here only what is imported is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

import nas
from nas.cli.app import cli
from nas.search.run import store_url

HEAVY = ("torch", "optuna", "sqlalchemy", "pandas", "scipy", "ray", "sklearn")

#: Runs ``nas.cli.main(argv)`` in this interpreter, then prints its exit status and the heavy modules it imported.
DRIVER = """
import json, sys
argv, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
code = 0
if argv is not None:
    from nas.cli import main
    for args in argv:
        try:
            main(args)
        except SystemExit as exit_:
            code = exit_.code if code == 0 else code
else:
    import nas
print(json.dumps({"code": code, "imported": [m for m in heavy if m in sys.modules]}), file=sys.stderr)
"""


def drive(*commands: list[str], cwd: Path | None = None) -> dict[str, Any]:
    """The exit status of the last command to fail (0 if none did) and the heavy modules imported, when a fresh
    interpreter runs ``commands`` one after the other (none: only ``import nas``)."""
    argv = json.dumps([list(map(str, c)) for c in commands] if commands else None)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, argv, json.dumps(HEAVY)], capture_output=True, text=True, cwd=cwd, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stderr.splitlines()[-1])
    result["stderr"] = "\n".join(done.stderr.splitlines()[:-1])
    return result


def every_command(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += every_command(command, (*prefix, name))
    return found


def test_import_nas_imports_no_heavy_library():
    assert drive()["imported"] == []


def test_help_of_the_group_and_of_every_command_imports_no_heavy_library():
    commands = every_command(cli)
    assert {("search",), ("query",), ("space", "measure"), ("bench", "supernet")} <= set(commands)
    result = drive(["--help"], *([*c, "--help"] for c in commands))
    assert result["code"] == 0 and result["imported"] == []


def test_a_strategy_is_listed_without_importing_its_module():
    """The Optuna bridge is declared: listed by name, imported when it is used."""
    code = "import sys, nas; print('optuna' in nas.STRATEGIES.names(), 'optuna' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["True", "False"]
    assert nas.STRATEGIES.get("optuna") is nas.OptunaStrategy


CONFIG: dict[str, Any] = {
    "name": "table",
    "space": {"name": "nb201"},
    "dataset": {"name": "cifar10"},
    "evaluator": {"name": "nb201-table", "options": {"devices": ["pixel3"]}},
    "objectives": ["accuracy", "latency:pixel3"],
    "strategy": {"name": "optuna", "options": {"sampler": "random"}},
    "budget": {"evaluations": 8},
    "execution": {"address": "local", "batch_size": 4},
    "export": {"top": 0},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "blue"}, "colour: unknown key; accepted: name, seed"),
        ({"budget": {"evaluations": "8"}}, "budget.evaluations: got '8'"),
        ({"execution": {"address": "local", "workers": 0}}, "execution.workers: got 0"),
        ({"space": {"name": "nb2O1"}}, "unknown search space 'nb2O1'; registered: categorical, macro-cnn, nb201"),
        ({"strategy": {"name": "optuna", "options": {"sampler": "tpe"}}, "objectives": "accuracy"}, "objectives: "),
        (None, "is not valid YAML"),
    ],
    ids=["unknown-key", "string-for-integer", "bad-value", "unknown-space", "not-a-list", "yaml"],
)
def test_a_config_error_is_refused_without_importing_torch(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **change}) if change is not None else "name: [unclosed\n")
    result = drive(["search", path, "--out", tmp_path / "runs"])
    assert result["code"] == 2 and message in result["stderr"] and "Traceback" not in result["stderr"]
    assert "torch" not in result["imported"] and "optuna" not in result["imported"]
    assert not (tmp_path / "runs").exists()


def test_an_unknown_option_of_a_component_is_still_refused(tmp_path):
    """The options are checked once the rest of the config is valid (this needs the classes, so torch)."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "strategy": {"name": "optuna", "options": {"sampler_opts": {}}}}))
    result = drive(["search", path, "--out", tmp_path / "runs"])
    assert result["code"] == 2
    assert "strategy.options.sampler_opts: unknown key; accepted: sampler, sampler_options" in result["stderr"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, data_dir) -> Path:
    """A run of 8 NAS-Bench-201 table evaluations (SQLite store), made in this process."""
    folder = tmp_path_factory.mktemp("startup")
    path = folder / "table.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "dataset": {"name": "cifar10", "data_dir": str(data_dir)}}))
    run = nas.run_search(nas.load_config(path), folder / "runs", progress=False)
    assert len(run.to_dataframe()) == 8
    assert run.path is not None
    return run.path


def test_query_of_a_run_imports_neither_torch_nor_scipy(small_run):
    result = drive(["query", small_run, "--pareto", "--format", "json"], ["query", small_run, "--top", "3"])
    assert result["code"] == 0, result["stderr"]
    assert not {"torch", "scipy", "ray", "sklearn"} & set(result["imported"])
    assert "optuna" in result["imported"]  # the store is read


def test_a_run_opened_by_its_storage_url_imports_no_torch(small_run):
    result = drive(["query", "--storage", store_url(small_run), "--format", "csv"])
    assert result["code"] == 0, result["stderr"]
    assert "torch" not in result["imported"]
