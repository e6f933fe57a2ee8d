"""Experiment configs: defaults, objectives in text or mapping form, and errors that name the bad key's path."""

from __future__ import annotations

import subprocess
import sys
import time

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


def changed(change):
    """MINIMAL with the top-level key of ``change`` (a line such as ``seed: 3``) replaced by it."""
    key = change.split(":")[0]
    return "\n".join([*(line for line in MINIMAL.splitlines() if not line.startswith(f"{key}:")), change])


def test_a_minimal_config_gets_the_documented_defaults(tmp_path):
    config = nas.load_config(write(tmp_path, MINIMAL))
    assert config.name == "quickstart" and config.seed == 0
    assert config.evaluator.options == {"epochs": 1, "fraction": 0.25}
    assert config.objectives == [  # a direction not given is the evaluator's declared one, once wired
        nas.Objective("accuracy"),
        nas.Objective("macs", None, 20e6),
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
    with pytest.raises(nas.InvalidOptionError) as info:
        nas.load_config(write(tmp_path, changed(change)))
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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("budget: {evaluations: true}", "budget.evaluations: got True; Input should be a valid integer; types are"),
        ("budget: {evaluations: 2.0}", "budget.evaluations: got 2.0; Input should be a valid integer"),
        ("budget: {wall_time_s: .inf}", "budget.wall_time_s: got inf; Input should be a finite number"),
        ("budget: {wall_time_s: .nan}", "budget.wall_time_s: got nan; Input should be a finite number"),
        ("budget: {wall_time_s: '60'}", "budget.wall_time_s: got '60'; Input should be a valid number; types are"),
        ("execution: {resources: {cpu: .inf}}", "execution.resources.cpu: got inf; Input should be a finite number"),
        ("seed: '3'", "seed: got '3'; a seed is an integer from 0 to 4294967295"),
        ("seed: -1", "seed: got -1; a seed is an integer from 0 to 4294967295"),
        ("seed: 4294967296", "seed: got 4294967296; a seed is an integer from 0 to 4294967295"),
        ("seed: true", "seed: got True; a seed is an integer"),
        (
            "name: '..'",
            "name: got '..'; use letters, digits, '.', '_' and '-' only (at most 255 characters, not only dots",
        ),
        ("name: .", "name: got '.'; use letters"),
        ("name: ''", "name: got ''; use letters"),
        ("name: a/b", "name: got 'a/b'; use letters"),
        ("name: 'a\\b'", "name: got 'a\\\\b'; use letters"),
        ("name: -x", "name: got '-x'; use letters"),
        (f"name: {'x' * 256}", "; use letters"),
    ],
)
def test_values_of_the_wrong_type_or_out_of_range_are_refused(tmp_path, change, message):
    with pytest.raises(nas.InvalidOptionError) as info:
        nas.load_config(write(tmp_path, changed(change)))
    assert message in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("objectives: [accuracy, accuracy]", "objectives: got ['accuracy', 'accuracy']; objective 'accuracy' is given"),
        ("objectives: [accuracy, macs, {name: macs, bound: 5}]", "objective 'macs' is given twice"),
        (
            "objectives: ['latency:pixel3', 'latency_ms:pixel3']",
            "objective 'latency_ms:pixel3' is given twice (as 'latency:pixel3'); give each figure once",
        ),
        ("objectives: [accuracy, 'macs<=nan']", "objective 'macs': bound nan is not a finite number"),
        ("objectives: [accuracy, 'macs<=inf']", "objective 'macs': bound inf is not a finite number"),
        ("objectives: [{name: macs, bound: abc}]", "objective 'macs': bound 'abc' is not a finite number"),
        ("objectives: [{name: macs, bound: true}]", "objective 'macs': bound True is not a finite number"),
        ("objectives: [{name: macs, bound: .nan}]", "objective 'macs': bound nan is not a finite number"),
        ("objectives: [{name: macs, direction: MAX}]", "direction 'MAX' is not one of max, min"),
        ("objectives: [{name: 3}]", "objective 3: its name is text such as accuracy or macs"),
    ],
)
def test_objectives_are_distinct_figures_with_finite_bounds(tmp_path, change, message):
    with pytest.raises(nas.InvalidOptionError) as info:
        nas.load_config(write(tmp_path, changed(change)))
    assert message in str(info.value), str(info.value)


ACCEPTED = "accepted: sqlite:///path/to/store.db or postgresql+psycopg2://user@host/db (with the driver installed)"
ADDRESSES = "accepted: no address (a local Ray), local (no Ray), auto, HOST:PORT or ray://HOST:PORT with PORT from 1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "storage: {url: 'sqlite:relative'}",
            f"got 'sqlite:relative'; 'sqlite:relative' is no database URL; {ACCEPTED}",
        ),
        ("storage: {url: 'sqlite://'}", f"an in-memory SQLite database would lose the results; {ACCEPTED}"),
        ("storage: {url: 'mysql://u@h/db'}", f"its database driver MySQLdb is not installed; {ACCEPTED}"),
        ("storage: {url: 'postgresql+pg8000://u@h/db'}", f"its database driver pg8000 is not installed; {ACCEPTED}"),
        ("storage: {url: 'mongodb://h/db'}", f"SQLAlchemy knows no database 'mongodb'; {ACCEPTED}"),
        ("storage: {url: 'postgresql+psycopg2://h:abc/db'}", f"is no database URL; {ACCEPTED}"),
        ("storage: {url: 'postgresql+psycopg2://h:70000/db'}", f"port 70000 is not from 1 to 65535; {ACCEPTED}"),
        ("execution: {address: 'head:0'}", f"execution.address: got 'head:0'; {ADDRESSES}"),
        ("execution: {address: 'head:65536'}", f"got 'head:65536'; {ADDRESSES}"),
        ("execution: {address: 'head'}", f"got 'head'; {ADDRESSES}"),
        ("execution: {address: 'http://head:6379'}", f"got 'http://head:6379'; {ADDRESSES}"),
        ("execution: {address: 'head:6379/x'}", f"got 'head:6379/x'; {ADDRESSES}"),
        ("execution: {address: ''}", f"got ''; {ADDRESSES}"),
    ],
)
def test_storage_urls_and_ray_addresses_are_checked_without_connecting(tmp_path, change, message):
    if "pg8000" in change:
        pytest.importorskip("sqlalchemy.dialects.postgresql.pg8000")
        if _installed("pg8000"):
            pytest.skip("pg8000 is installed")
    if "mysql" in change and _installed("MySQLdb"):
        pytest.skip("MySQLdb is installed")
    with pytest.raises(nas.InvalidOptionError) as info:
        nas.load_config(write(tmp_path, changed(change)))
    assert message in str(info.value), str(info.value)


def _installed(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize(
    "change",
    [
        "execution: {address: local}",
        "execution: {address: auto}",
        "execution: {address: '127.0.0.1:6379'}",
        "execution: {address: 'head-node.cluster:6379'}",
        "execution: {address: 'ray://head:10001'}",
        "execution: {address: '[::1]:6379'}",
        "storage: {url: 'sqlite:///runs/store.db'}",
        "seed: 4294967295",
        "budget: {wall_time_s: 300}",
        "budget: {wall_time_s: 3e3}",
    ],
)
def test_accepted_addresses_urls_and_numbers(tmp_path, change):
    nas.load_config(write(tmp_path, changed(change)))


def test_a_postgresql_url_with_its_driver_is_accepted(tmp_path):
    pytest.importorskip("psycopg2")
    url = "postgresql+psycopg2://user@db.example:5432/nas"
    assert nas.load_config(write(tmp_path, changed(f"storage: {{url: '{url}'}}"))).storage.url == url


def test_a_bound_in_mapping_form_is_a_number_also_in_exponent_notation(tmp_path):
    config = nas.load_config(write(tmp_path, changed("objectives: [accuracy, {name: macs, bound: 20e6}]")))
    assert config.objectives[1] == nas.Objective("macs", None, 20e6)
    assert isinstance(config.objectives[1].bound, float)


def test_objective_bounds_are_finite_numbers():
    assert nas.Objective("macs", nas.Direction.MIN, 5).bound == 5.0
    for bound in (float("nan"), float("inf"), True, "5"):
        with pytest.raises(nas.InvalidOptionError, match="is not a finite number"):
            nas.Objective("macs", nas.Direction.MIN, bound)  # type: ignore[arg-type]
    with pytest.raises(nas.InvalidOptionError, match="bound -inf is not a finite number"):
        nas.Objective.parse("accuracy>=-inf")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "evaluator: {name: train, options: {epoch: 1}}",
            "evaluator.options.epoch: unknown key; accepted: epochs, fraction, batch_size, lr",
        ),
        ("evaluator: {name: train, options: {epochs: 0}}", "evaluator.options.epochs: got 0; Input should be greater"),
        (
            "evaluator: {name: train, options: {lr: '0.1'}}",
            "evaluator.options.lr: got '0.1'; Input should be a valid number; types are strict: write a number",
        ),
        (
            "space: {name: resnet20-pooling, options: {num_downsamples: 1}}",
            "space.options.num_downsamples: unknown key; accepted: input_shape, num_classes, num_downsample",
        ),
        (
            "space: {name: resnet20-pooling, options: {ops: [max, max]}}",
            "space.options.ops: got ['max', 'max']; give each value once",
        ),
        (
            "space: {name: nb201, options: {input_shape: [3, 30, 30]}}",
            "space.options: got {'input_shape': [3, 30, 30]}; nb201 needs a height and width divisible by 4",
        ),
        (
            "strategy: {name: predictor, options: {inital: 4}}",
            "strategy.options.inital: unknown key; accepted: initial, candidates, predictor, predictor_options",
        ),
        ("strategy: {name: random, options: {seed: 4}}", "strategy.options.seed: unknown key; accepted: none"),
        (
            "dataset: {name: digits, options: {colour: red}}",
            "dataset.options.colour: unknown key; accepted: val_fraction, test_fraction, train_size, val_size",
        ),
        ("dataset: {name: digits, options: {train_size: 0}}", "dataset.options.train_size: got 0; Input should be"),
        (
            "dataset: {name: digits, options: {val_fraction: 0.5, test_fraction: 0.5}}",
            "dataset.options: got {'val_fraction': 0.5, 'test_fraction': 0.5}; val_fraction=0.5 and "
            "test_fraction=0.5 must have a sum below 1",
        ),
    ],
)
def test_component_options_are_checked_against_the_registered_class(tmp_path, change, message):
    with pytest.raises(nas.InvalidOptionError) as info:
        nas.load_config(write(tmp_path, changed(change)))
    assert message in str(info.value), str(info.value)


def test_dataset_options_are_those_of_the_data_the_evaluator_reads(tmp_path):
    text = changed("evaluator: {name: nb201-table}").replace("resnet20-pooling", "nb201")
    nas.load_config(write(tmp_path, text + "\ndataset: {name: cifar10}"))
    with pytest.raises(nas.InvalidOptionError, match="dataset.options.train_size: unknown key; accepted: none"):
        nas.load_config(write(tmp_path, text + "\ndataset: {name: cifar10, options: {train_size: 10}}"))
    trusted = "evaluator: {name: predictor, options: {trusted: train}}"
    assert nas.load_config(write(tmp_path, changed(trusted) + "\ndataset: {options: {train_size: 10}}"))
    with pytest.raises(nas.InvalidOptionError, match="dataset.options.size: unknown key; accepted: val_fraction"):
        nas.load_config(write(tmp_path, changed(trusted) + "\ndataset: {options: {size: 10}}"))


BOMB = "\n".join(
    [
        "a: &a [x, x, x, x, x, x, x, x, x]",
        *(f"{k}: &{k} [{', '.join([f'*{p}'] * 9)}]" for p, k in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BOMB, "line 5, column 4: more than 10000 values once aliases are expanded; a config holds far fewer"),
        ("a: &a [x, *a]\n", "line 1, column 11: more than 10000 values once aliases are expanded"),
        ("a: " + "[" * 2000 + "]" * 2000, "line 1, column 53: nested deeper than 50 levels"),
        (MINIMAL + "seed: 1\nseed: 2\n", "line 9, column 1: key 'seed' is given twice (first on line 8); give each"),
        (MINIMAL + "budget: {evaluations: 4}\n", "line 8, column 1: key 'budget' is given twice (first on line 7)"),
        ("a: {b: 1, c: 2, b: 3}\n", "line 1, column 17: key 'b' is given twice (first on line 1)"),
    ],
)
def test_yaml_that_would_hang_or_lose_a_value_is_refused_while_reading(tmp_path, text, message):
    start = time.perf_counter()
    with pytest.raises(nas.InvalidOptionError) as info:
        nas.load_config(write(tmp_path, text))
    assert str(info.value).startswith(f"{tmp_path / 'experiment.yaml'}: {message}"), str(info.value)
    assert time.perf_counter() - start < 2


def test_a_few_aliases_and_merge_keys_still_work(tmp_path):
    text = """
name: quickstart
space: &component {name: resnet20-pooling}
evaluator: {<<: *component, name: train}
objectives: [accuracy, macs]
budget: {<<: {evaluations: 40, wall_time_s: 60}, evaluations: 8}
"""
    config = nas.load_config(write(tmp_path, text))
    assert (config.space.name, config.evaluator.name) == ("resnet20-pooling", "train")
    assert (config.budget.evaluations, config.budget.wall_time_s) == (8, 60.0)


def test_files_that_are_no_utf8_text_or_no_file(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(MINIMAL.replace("quickstart", "caf\xe9").encode("latin-1"))
    with pytest.raises(nas.MissingDataError, match=r"latin.yaml is not UTF-8 text \(byte 0xe9 on line 2\); save it"):
        nas.load_config(latin)
    binary = tmp_path / "model.pt"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(nas.MissingDataError, match=r"model.pt is not UTF-8 text \(byte 0x80 on line 2\)"):
        nas.load_config(binary)
    with pytest.raises(nas.MissingDataError, match="experiment.yaml is not valid YAML: unacceptable character #x0000"):
        nas.load_config(write(tmp_path, "name: \x00"))
    with pytest.raises(nas.MissingDataError, match=f"cannot read the experiment config {tmp_path}: Is a directory"):
        nas.load_config(tmp_path)


def test_a_corrupted_run_config_is_one_line_naming_the_file(tmp_path):
    run = tmp_path / "runs" / "quickstart"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(changed("budget: {evaluations: 0}"))
    with pytest.raises(nas.InvalidOptionError, match=r"runs/quickstart/config.yaml: budget.evaluations: got 0;"):
        nas.load_run(run)
    (run / "config.yaml").write_bytes(b"name: [\xff")
    with pytest.raises(nas.MissingDataError, match=r"runs/quickstart/config.yaml is not UTF-8 text"):
        nas.load_run(run)


@pytest.mark.parametrize(
    ("text", "args", "words"),
    [
        (BOMB, (), "more than 10000 values once aliases are expanded"),
        (MINIMAL, ("--name", ".."), "name: got '..'; use letters, digits"),
        (changed("evaluator: {name: train, options: {epoch: 1}}"), (), "evaluator.options.epoch: unknown key"),
        (changed("storage: {url: 'sqlite:runs.db'}"), (), "storage.url: got 'sqlite:runs.db'; 'sqlite:runs.db' is no"),
        (MINIMAL, ("--seed", "-1"), "seed: got -1; a seed is an integer from 0 to 4294967295"),
        (MINIMAL.encode("utf-16"), (), "bad.yaml is not UTF-8 text (byte 0xff on line 1); save it as UTF-8"),
    ],
)
def test_nas_search_refuses_a_bad_config_in_one_line_before_writing_anything(tmp_path, text, args, words):
    config = tmp_path / "bad.yaml"
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    command = [sys.executable, "-m", "nas", "search", "bad.yaml", "--out", "runs", "--no-progress", *args]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: bad.yaml") and result.stderr.count("\n") == 1, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]


def test_space_options_stand_beside_the_name_or_in_options(tmp_path):
    dims = "{a: [1, 2], b: [x, y]}"
    beside = nas.load_config(write(tmp_path, changed(f"space: {{name: categorical, dimensions: {dims}}}")))
    inside = nas.load_config(write(tmp_path, changed(f"space: {{name: categorical, options: {{dimensions: {dims}}}}}")))
    assert beside.space == inside.space and beside.space.options == {"dimensions": {"a": [1, 2], "b": ["x", "y"]}}
    with pytest.raises(nas.InvalidOptionError, match="dimensions given beside the name and in options; give each"):
        nas.load_config(
            write(
                tmp_path, changed(f"space: {{name: categorical, dimensions: {dims}, options: {{dimensions: {dims}}}}}")
            )
        )
    with pytest.raises(
        nas.InvalidOptionError, match="space.options.dimension: unknown key; accepted: dimensions, canonical"
    ):
        nas.load_config(write(tmp_path, changed(f"space: {{name: categorical, dimension: {dims}}}")))


def test_deduplication_is_canonical_unless_the_strategy_says(tmp_path):
    assert nas.load_config(write(tmp_path, MINIMAL)).strategy.dedup is nas.DedupKey.CANONICAL
    config = nas.load_config(write(tmp_path, changed("strategy: {name: random, dedup: arch_id}")))
    assert config.strategy.dedup is nas.DedupKey.ARCH_ID
    with pytest.raises(
        nas.InvalidOptionError, match="strategy.dedup: got 'shape'; Input should be 'arch_id' or 'canon"
    ):
        nas.load_config(write(tmp_path, changed("strategy: {name: random, dedup: shape}")))
