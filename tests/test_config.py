"""Experiment configs: defaults, objectives in text or mapping form, and errors that name the bad key's path."""

from __future__ import annotations

import pytest

import nas

MINIMAL = """
name: quickstart
space: {name: resnet20-pooling}
evaluator: {name: train, options: {epochs: 1, fraction: 0.25}}
objectives: [accuracy, "macs<=20e6", {name: loss, direction: min}]
strategy: {name: predictor, options: {initial: 4}}
budget: {evaluations: 40}
"""


def write(tmp_path, text):
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return path


def test_a_minimal_config_gets_the_documented_defaults(tmp_path):
    config = nas.load_config(write(tmp_path, MINIMAL))
    assert config.name == "quickstart" and config.seed == 0
    assert config.evaluator.options == {"epochs": 1, "fraction": 0.25}
    assert config.objectives == [
        nas.Objective("accuracy", nas.Direction.MAX),
        nas.Objective("macs", nas.Direction.MIN, 20e6),
        nas.Objective("loss", nas.Direction.MIN),
    ]
    assert config.dataset.name == "digits" and config.storage.url is None
    assert config.execution.address is None and config.execution.workers == 1
    assert config.export.formats == ["state_dict", "torchscript", "onnx"] and config.export.top == 1


def test_overrides_replace_top_level_keys(tmp_path):
    config = nas.load_config(write(tmp_path, MINIMAL), seed=7, name="again")
    assert (config.seed, config.name) == (7, "again")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("name: quick start", "name: got 'quick start'; use letters, digits"),
        ("space: {name: resnet21}", "space: got {'name': 'resnet21'}; unknown search space 'resnet21'; registered:"),
        ("evaluator: {name: train, optons: {}}", "evaluator.optons: unknown key; accepted: name, options"),
        ("strategy: {name: bayes}", "unknown strategy 'bayes'; registered: evolution, local-search"),
        ("objectives: []", "objectives: got []; List should have at least 1 item"),
        ("objectives: [{name: macs, direction: up}]", "objective 'macs': direction 'up' is not one of max, min"),
        ("objectives: ['macs<=lots']", "objective 'macs<=lots': bound 'lots' is not a number"),
        ("budget: {evaluations: 0}", "budget.evaluations: got 0; Input should be greater than 0"),
        ("budget: {}", "budget: got {}; give evaluations, wall_time_s or both"),
        ("storage: {url: runs/x.db}", "storage.url: got 'runs/x.db'; 'runs/x.db' is no database URL"),
        ("execution: {adress: auto}", "execution.adress: unknown key; accepted: address, workers, resources"),
        ("export: {formats: [tflite]}", "export.formats.0: got 'tflite'; Input should be 'state_dict', 'torchscript'"),
        ("colour: blue", "colour: unknown key; accepted: name, seed, space, dataset, evaluator"),
    ],
)
def test_bad_values_name_their_path(tmp_path, change, message):
    key = change.split(":")[0]
    lines = [line for line in MINIMAL.splitlines() if not line.startswith(f"{key}:")]
    with pytest.raises(nas.InvalidOptionError) as info:
        nas.load_config(write(tmp_path, "\n".join([*lines, change])))
    assert message in str(info.value) and str(info.value).startswith(str(tmp_path))


def test_every_error_is_reported_at_once(tmp_path):
    text = MINIMAL.replace("evaluations: 40", "evaluations: -1").replace("name: predictor", "name: bayes")
    with pytest.raises(nas.InvalidOptionError) as info:
        nas.load_config(write(tmp_path, text))
    assert "budget.evaluations" in str(info.value) and "strategy" in str(info.value)


def test_missing_keys_and_unreadable_files(tmp_path):
    with pytest.raises(nas.InvalidOptionError, match="evaluator: missing; objectives: missing"):
        nas.load_config(write(tmp_path, "name: x\nspace: {name: nb201}\nbudget: {evaluations: 3}\n"))
    with pytest.raises(nas.MissingDataError, match="cannot read the experiment config .*absent.yaml"):
        nas.load_config(tmp_path / "absent.yaml")
    with pytest.raises(nas.MissingDataError, match="is not valid YAML"):
        nas.load_config(write(tmp_path, "name: [unclosed"))
    with pytest.raises(nas.InvalidOptionError, match="expected a mapping of keys"):
        nas.load_config(write(tmp_path, "- a list\n"))
