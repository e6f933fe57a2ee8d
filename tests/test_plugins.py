"""Plugins: where they come from, in what order, how a config keeps them, and what a failure says."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
import yaml

import nas
from nas.core import plugins
from nas.search.config import ExperimentConfig, load_config


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path) -> Iterator[None]:
    """Each test imports plugins of its own (files in its ``tmp_path``): they and what they register are forgotten
    afterwards."""
    monkeypatch.delenv(plugins.PLUGINS_ENV, raising=False)
    modules, loaded, failures = set(sys.modules), dict(plugins._LOADED), dict(plugins._WORKER_FAILURES)
    evaluators = dict(nas.EVALUATORS._classes)
    yield
    for name in set(sys.modules) - modules:
        if str(getattr(sys.modules[name], "__file__", "")).startswith(str(tmp_path)):
            del sys.modules[name]
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
    plugins._WORKER_FAILURES.clear()
    plugins._WORKER_FAILURES.update(failures)
    nas.EVALUATORS._classes.clear()
    nas.EVALUATORS._classes.update(evaluators)


def _config(tmp_path, plugin_config, name="plugged", evaluator="conv-count", **keys):
    path = tmp_path / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(plugin_config(name, evaluator, **keys)))
    return path


def test_a_plugin_file_is_found_from_the_current_directory_and_kept_absolute(
    tmp_path, monkeypatch, write_plugin, plugin_config
):
    plugin = write_plugin(tmp_path / "plugins" / "unit_first.py", "conv-count-first")
    config_path = _config(tmp_path, plugin_config, evaluator="conv-count-first", plugins=["plugins/unit_first.py"])
    monkeypatch.chdir(tmp_path)  # relative to where the command is typed, not to the config's folder
    config = load_config(config_path)
    assert config.plugins == [str(plugin)]
    assert "conv-count-first" in nas.EVALUATORS.names()
    assert ExperimentConfig.model_validate(config.model_dump()).plugins == [str(plugin)]


def test_the_config_the_environment_and_the_command_line_add_up_in_this_order(
    tmp_path, monkeypatch, write_plugin, plugin_config
):
    files = [write_plugin(tmp_path / f"unit_{i}.py", f"conv-count-{i}") for i in range(3)]
    config_path = _config(tmp_path, plugin_config, evaluator="conv-count-0", plugins=["unit_0.py"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(plugins.PLUGINS_ENV, os.pathsep.join(["unit_1.py", str(files[0])]))
    config = load_config(config_path, plugins=["./unit_2.py", "unit_1.py"])
    assert config.plugins == [str(f) for f in files]  # each once, the first time it was given


def test_a_config_validated_from_its_stored_form_imports_its_plugins(tmp_path, write_plugin, plugin_config):
    plugin = write_plugin(tmp_path / "unit_stored.py", "conv-count-stored")
    document = plugin_config("stored", "conv-count-stored", plugins=[str(plugin)])
    assert ExperimentConfig.model_validate(document).evaluator.name == "conv-count-stored"


@pytest.mark.parametrize(
    "entry, source, problem",
    [
        ("./missing.py", "--plugin", "cannot be imported: no such file"),
        ("no_such_package.plugin", "NAS_PLUGINS", "ModuleNotFoundError: No module named 'no_such_package'"),
        ("syntax_error.py", "--plugin", "SyntaxError: "),
        ("raises.py", "--plugin", "RuntimeError: the plugin's own failure"),
        ("my-plugin", "--plugin", "is neither a module name such as mypkg.nas_plugin nor the path of a .py file"),
        ("has-dash.py", "--plugin", "cannot be imported as a module named 'has-dash'"),
        ("this.py", "--plugin", "its module name 'this' is that of another module"),
    ],
)
def test_a_plugin_that_cannot_be_imported_is_one_line_naming_it_where_it_came_from_and_why(
    tmp_path, monkeypatch, entry, source, problem
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "syntax_error.py").write_text("def broken(:\n")
    (tmp_path / "raises.py").write_text('raise RuntimeError("the plugin\'s own failure\\nand a second line")\n')
    (tmp_path / "has-dash.py").write_text("")
    (tmp_path / "this.py").write_text("")  # the standard library's `this`
    with pytest.raises(nas.PluginError) as error:
        nas.load_plugins(plugins.parse_plugins([entry], source))
    message = str(error.value)
    assert message.startswith(f"plugin {entry!r} (from {source})") and problem in message, message
    assert "\n" not in message


def test_two_plugin_files_of_one_name_are_refused(tmp_path, write_plugin):
    first = write_plugin(tmp_path / "a" / "unit_twin.py", "conv-count-a")
    second = write_plugin(tmp_path / "b" / "unit_twin.py", "conv-count-b")
    with pytest.raises(nas.PluginError, match="its module name 'unit_twin' is that of another module"):
        nas.load_plugins([str(first), str(second)])


def test_a_worker_keeps_its_plugin_failures_for_the_message_of_what_it_cannot_create(
    tmp_path, monkeypatch, write_plugin
):
    write_plugin(tmp_path / "unit_worker.py", "conv-count-worker")
    monkeypatch.syspath_prepend(str(tmp_path))  # where the Ray runner's copy of a plugin file lies
    monkeypatch.setenv(plugins.WORKER_PLUGINS_ENV, os.pathsep.join(["no_such_worker_plugin", "unit_worker"]))
    plugins.load_worker_plugins()  # never raises: a Ray worker whose start-up hook raises is started again
    assert "conv-count-worker" in nas.EVALUATORS.names()
    try:
        nas.EVALUATORS.get("conv-count-elsewhere")
    except nas.UnknownNameError as error:
        message = plugins.creation_failure("evaluator", "conv-count-elsewhere", error)
    assert message.startswith("a Ray worker cannot create evaluator 'conv-count-elsewhere': unknown evaluator")
    assert "plugin no_such_worker_plugin failed to import there: ModuleNotFoundError" in message
    assert "plugins come from the config's plugins:, --plugin or NAS_PLUGINS" in message


def test_the_ray_workers_get_the_plugins_as_module_names_and_the_files_to_import(tmp_path):
    pytest.importorskip("ray")
    from nas.search.runners.ray import runtime_env

    env = runtime_env([str(tmp_path / "my_eval.py"), "mypkg.nas_plugin"])
    assert env["py_modules"] == [str(tmp_path / "my_eval.py")]
    assert env["env_vars"] == {plugins.WORKER_PLUGINS_ENV: os.pathsep.join(["my_eval", "mypkg.nas_plugin"])}
    assert env["worker_process_setup_hook"] == "nas.core.plugins.load_worker_plugins"
