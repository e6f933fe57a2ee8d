"""Plugins through the command line as a user types it: an evaluator of the user's own, in a file installed nowhere
and named by a relative path, reaches every Ray worker from the config's ``plugins:``, ``--plugin`` or
``NAS_PLUGINS``; the run keeps it for ``--resume`` and ``nas query``; a worker that cannot create the evaluator
stops the search at once, and a plugin that cannot be imported stops it before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import nas

NAS = [sys.executable, "-m", "nas"]
#: The plugin, as the user names it from their working directory (the test's tmp_path).
PLUGIN = "plugins/conv_eval.py"


def _env(**variables: str) -> dict[str, str]:
    """A user's shell, without plugins or a Ray address of its own unless given."""
    env = {k: v for k, v in os.environ.items() if k not in ("NAS_PLUGINS", "RAY_ADDRESS")}
    return {**env, **variables}


def _nas(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NAS, *args], cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=900
    )  # the timeout is a ceiling for a hung search, not a measure


def _write_config(folder: Path, document: dict) -> str:
    (folder / f"{document['name']}.yaml").write_text(yaml.safe_dump(document))
    return f"{document['name']}.yaml"


def _results(run_dir: Path) -> list[nas.EvalResult]:
    """A run's results, read without importing its plugins here (`nas.load_run` would: a test imports none)."""
    return nas.ResultStore.open(f"sqlite:///{run_dir / 'store.db'}").results()


def _own_lines(stderr: str) -> list[str]:
    """What the search printed itself: Ray prefixes what it forwards from its workers with ``(NAME pid=N)``."""
    return [line for line in stderr.splitlines() if "pid=" not in line.split(")")[0]]


@pytest.mark.parametrize(
    "given, expensive",
    [("config", False), ("--plugin", False), ("NAS_PLUGINS", True)],
    ids=["config-actors", "option-actors", "environment-tune"],
)
def test_a_plugin_file_reaches_every_worker_of_a_local_ray(tmp_path, write_plugin, plugin_config, given, expensive):
    """Cheap evaluations go in batches to 2 long-lived actors, expensive ones to Ray Tune trials: each worker imports
    the plugin from the copy Ray ships to its node, before it creates the evaluator."""
    plugin = write_plugin(tmp_path / PLUGIN, expensive=expensive)
    keys = {"execution": {"workers": 2, "batch_size": 2}, "budget": {"evaluations": 12 if not expensive else 4}}
    if given == "config":
        keys["plugins"] = [PLUGIN]
    config = _write_config(tmp_path, plugin_config("plugged", **keys))
    args = ["search", config, "--out", "runs", "--no-progress"]
    env = _env()
    if given == "--plugin":
        args += ["--plugin", PLUGIN]
    elif given == "NAS_PLUGINS":
        env = _env(NAS_PLUGINS=os.pathsep.join(["", PLUGIN]))
    done = _nas(tmp_path, *args, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    run_dir = tmp_path / "runs" / "plugged"
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["plugins"] == [str(plugin)]
    results = _results(run_dir)
    assert len(results) == keys["budget"]["evaluations"] and all(r.ok for r in results)
    files = {r.provenance.details["plugin_file"] for r in results}
    assert len(files) == 1 and Path(files.pop()).name == "conv_eval.py"  # one copy of the file on this node ...
    assert str(plugin) not in {r.provenance.details["plugin_file"] for r in results}  # ... shipped by Ray
    if not expensive:
        assert len({r.provenance.details["pid"] for r in results}) == 2  # both actors imported it

    queried = _nas(Path("/"), "query", str(run_dir), "--pareto", "--format", "json")  # no plugin given: the run's
    assert queried.returncode == 0, queried.stderr
    assert {row["arch_id"] for row in json.loads(queried.stdout)} <= {r.arch_id for r in results}


def test_a_resumed_search_imports_the_plugins_of_its_run(tmp_path, write_plugin, plugin_config):
    """``nas --plugin FILE search`` (the option before the command), then ``--resume`` without it: the run's
    config.yaml holds the plugin."""
    write_plugin(tmp_path / PLUGIN)
    config = _write_config(tmp_path, plugin_config("resumed", execution={"address": "local"}))
    first = _nas(tmp_path, "--plugin", PLUGIN, "search", config, "--max-evals", "5", "--no-progress")
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = _nas(tmp_path, "search", config, "--resume", "--max-evals", "9", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(_results(tmp_path / "runs" / "resumed")) == 9


@pytest.mark.parametrize("expensive", [False, True], ids=["actors", "tune"])
def test_a_worker_that_cannot_create_the_evaluator_stops_the_search_at_once(
    tmp_path, write_plugin, plugin_config, stored_ids, expensive
):
    """The evaluator's constructor raises on the Ray workers (not on the driver, which checks the config): the
    search ends with exit status 2 and one line, before any of its 200 evaluations is stored as failed."""
    write_plugin(tmp_path / PLUGIN, expensive=expensive, fails_on_workers=True)
    keys = {"execution": {"workers": 2, "batch_size": 2}, "budget": {"evaluations": 200}}
    config = _write_config(tmp_path, plugin_config("refused", **keys))
    done = _nas(tmp_path, "search", config, "--plugin", PLUGIN, "--no-progress")
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "cannot create evaluator 'conv-count'" in errors[0]
    assert "RuntimeError: this evaluator refuses to run on a Ray worker" in errors[0]
    assert not [line for line in _own_lines(done.stderr) if "Traceback" in line], done.stderr[-3000:]
    assert stored_ids(tmp_path / "runs" / "refused" / "store.db") == []


#: A user's script: their evaluator is registered in this process only (imported, but named as no plugin).
DRIVER_ONLY = """
import sys

sys.path.insert(0, "plugins")
import conv_eval  # noqa: F401

import nas

try:
    nas.run_search(nas.load_config(sys.argv[1]), "runs", progress=False)
except nas.WorkerSetupError as error:
    print(error)
    sys.exit(3)
"""


def test_an_evaluator_registered_on_the_driver_only_stops_the_search_at_once(tmp_path, write_plugin, plugin_config):
    write_plugin(tmp_path / PLUGIN)
    keys = {"execution": {"workers": 2, "batch_size": 2}, "budget": {"evaluations": 200}}
    config = _write_config(tmp_path, plugin_config("unplugged", **keys))
    (tmp_path / "search.py").write_text(DRIVER_ONLY)
    done = subprocess.run(
        [sys.executable, "search.py", config], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 3, done.stderr[-3000:]
    message = done.stdout.strip()
    assert "cannot create evaluator 'conv-count': unknown evaluator 'conv-count'; registered:" in message
    assert "plugins come from the config's plugins:, --plugin or NAS_PLUGINS" in message and "\n" not in message
    assert _results(tmp_path / "runs" / "unplugged") == []


@pytest.mark.parametrize(
    "given, entry, problem",
    [
        ("config", "no_such_package.nas_plugin", "ModuleNotFoundError: No module named 'no_such_package'"),
        ("--plugin", "plugins/missing.py", "no such file"),
        ("group --plugin", "plugins/broken.py", "ModuleNotFoundError: No module named 'not_installed_anywhere'"),
        ("NAS_PLUGINS", "plugins/broken.py", "ModuleNotFoundError: No module named 'not_installed_anywhere'"),
    ],
)
def test_a_plugin_that_cannot_be_imported_stops_the_search_before_anything_is_written(
    tmp_path, plugin_config, given, entry, problem
):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "broken.py").write_text("import not_installed_anywhere\n")
    keys = {"plugins": [entry]} if given == "config" else {}
    config = _write_config(tmp_path, plugin_config("never", **keys))
    args, env = ["search", config, "--no-progress"], _env()
    if given == "--plugin":
        args += ["--plugin", entry]
    elif given == "group --plugin":
        args = ["--plugin", entry, *args]
    elif given == "NAS_PLUGINS":
        env = _env(NAS_PLUGINS=entry)
    done = _nas(tmp_path, *args, env=env)
    assert done.returncode == 2, done.stderr
    source = {"config": f"plugins: in {config}", "group --plugin": "--plugin"}.get(given, given)
    assert done.stderr.startswith(f"error: plugin {entry!r} (from {source})") and problem in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()
