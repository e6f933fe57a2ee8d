"""The table evaluator on small tables the tests write: each key format, the declared figures, lookups that fail,
and errors at creation that name the file and what is expected."""

from __future__ import annotations

import importlib.util
import json
import math

import pandas as pd
import pytest

import nas

CELLS = [  # nb201 strings, and a made-up metric of each
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", 91.5),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 10.0),
    ("|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|", 80.25),
]
DIMENSIONS = {"op": ["conv", "pool"], "width": [16, 32]}


def make_table(space, path, key_format, metrics, **options):
    """The table evaluator of ``path`` on ``space``, created as a search creates it."""
    context = nas.EvaluatorContext(space)
    return nas.create_evaluator("table", context, path=str(path), key_format=key_format, metrics=metrics, **options)


@pytest.fixture
def nb201():
    return nas.create_space("nb201")


@pytest.fixture
def grid():
    return nas.create_space("categorical", dimensions=DIMENSIONS)


def nb201_table(tmp_path, nb201, rows=CELLS, name="cells.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=["arch_str", "analog_accuracy"]).to_csv(path, index=False)
    return make_table(nb201, path, "nb201-string", {"analog_accuracy": "max"}, key="arch_str")


def grid_rows():
    """Every architecture of the grid with a score and an energy (choices as columns)."""
    return [
        {"op": op, "width": width, "score": 2 * i, "energy_mj": 10 - i}
        for i, (op, width) in enumerate((op, w) for op in ("conv", "pool") for w in (16, 32))
    ]


def test_nb201_strings_are_looked_up_with_the_declared_direction_and_the_space_costs(tmp_path, nb201):
    table = nb201_table(tmp_path, nb201)
    assert isinstance(table, nas.TabularLookup) and isinstance(table, nas.KnowsCosts)
    declared = {f.name: f for f in table.figures()}
    assert declared["analog_accuracy"] == nas.Figure("analog_accuracy", nas.Direction.MAX, nas.Unit.SCORE)
    assert declared["params"] == nas.Figure("params", nas.Direction.MIN, nas.Unit.PARAMS)  # the space's analytic cost
    archs = table.archs()
    assert [nb201.to_string(a) for a in archs] == [s for s, _ in CELLS]
    (result,) = table.evaluate(archs[:1])
    assert result.ok and result.metrics == {"analog_accuracy": 91.5}
    assert result.costs == {"macs": nb201.cost(archs[0]).macs, "params": 802426}
    assert list(table.table().columns) == ["analog_accuracy", "macs", "params"] and len(table.table()) == 3
    counted = nb201.cost(archs[1])
    assert table.known_costs(archs[1:2]) == {"macs": [counted.macs], "params": [counted.params]}


def test_an_architecture_the_table_lacks_is_a_failed_result(tmp_path, nb201):
    table = nb201_table(tmp_path, nb201)
    other = next(a for a in nb201.enumerate() if a not in table.archs())
    bad = nas.Architecture("nb201", "1", {"edge_1_0": "conv"})
    missing, inside, invalid = table.evaluate([other, table.archs()[2], bad])
    assert missing.status is nas.Status.FAILED and "is not in the table cells.csv (3 rows)" in missing.reason
    assert inside.ok and inside.metrics["analog_accuracy"] == 80.25
    assert invalid.status is nas.Status.FAILED and "missing choices" in invalid.reason


def test_arch_json_keys_on_a_space_given_as_data(tmp_path, grid):
    rows = grid_rows()
    keys = [json.dumps({"width": r["width"], "op": r["op"]}) for r in rows]  # any key order
    path = tmp_path / "grid.csv"
    pd.DataFrame({"key": keys, "score": [r["score"] for r in rows]}).to_csv(path, index=False)
    table = make_table(grid, path, "arch-json", {"score": "max"}, key="key", units={"score": "percent"})
    assert [f.name for f in table.figures()] == ["score"]  # no costs: the space builds no networks
    assert table.figures()[0].unit is nas.Unit.PERCENT
    results = table.evaluate(list(grid.enumerate()))
    assert sorted(r.metrics["score"] for r in results) == [0, 2, 4, 6] and all(not r.costs for r in results)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_choices_as_columns_with_costs(tmp_path, grid, suffix):
    if suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        pytest.skip("pyarrow is not installed")
    frame = pd.DataFrame(grid_rows())
    path = tmp_path / f"grid{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    table = make_table(grid, path, "choices-columns", {"score": "max"}, costs=["energy_mj"], units={"energy_mj": "ms"})
    assert table.figures()[1] == nas.Figure("energy_mj", nas.Direction.MIN, nas.Unit.MS)
    arch = grid.arch({"op": "pool", "width": 32})  # the CSV holds 32, the space the integer 32
    (result,) = table.evaluate([arch])
    assert result.metrics == {"score": 6.0} and result.costs == {"energy_mj": 7.0}
    assert table.known_costs([arch]) == {"energy_mj": [7.0]}


def test_an_empty_cell_fails_its_result_for_want_of_the_value(tmp_path, nb201):
    table = nb201_table(tmp_path, nb201, rows=[(CELLS[0][0], None), CELLS[1]])
    (result,) = table.evaluate(table.archs()[:1])
    assert math.isnan(result.metrics["analog_accuracy"])


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        (CELLS, {"metrics": {"accuracy": "max"}}, r"cells.csv lacks the column accuracy; it has arch_str, analog_acc"),
        (CELLS, {"key": "arch"}, "lacks the column arch;"),
        ([CELLS[0], CELLS[1], CELLS[0]], {}, r"rows 1 and 3 \(after the header\) hold the same architecture"),
        ([("|conv~0|", 1.0)], {}, r"row 1 \(after the header\): not a NAS-Bench-201 string"),
        ([(CELLS[0][0], "high")], {}, "column analog_accuracy is not numeric \\(row 1 holds 'high'\\)"),
        (CELLS, {"metrics": {"analog_accuracy": "up"}}, r"metrics.analog_accuracy: got 'up'; Input should be 'max'"),
        (CELLS, {"metrics": {}}, "metrics: .*at least 1 item"),
        (CELLS, {"key": None}, "key_format nb201-string needs key"),
        (CELLS, {"costs": ["analog_accuracy"]}, "analog_accuracy given as metric and as cost"),
        (CELLS, {"units": {"analog_accuracy": "percents"}}, "units.analog_accuracy: got 'percents'; Input should"),
        (CELLS, {"key_format": "strings"}, "key_format: got 'strings'; Input should be 'nb201-string', 'arch-json'"),
    ],
)
def test_errors_at_creation_name_the_file_and_what_is_expected(tmp_path, nb201, rows, options, message):
    path = tmp_path / "cells.csv"
    pd.DataFrame(rows, columns=["arch_str", "analog_accuracy"]).to_csv(path, index=False)
    given = {"key_format": "nb201-string", "metrics": {"analog_accuracy": "max"}, "key": "arch_str", **options}
    with pytest.raises((nas.InvalidOptionError, nas.MissingDataError), match=message):
        make_table(nb201, path, **given)


def test_unreadable_files_are_named(tmp_path, nb201, grid, monkeypatch):
    options = {"key_format": "nb201-string", "metrics": {"a": "max"}, "key": "k"}
    with pytest.raises(nas.InvalidOptionError, match=r"table .*cells.xlsx: expected a .csv or .parquet file"):
        make_table(nb201, tmp_path / "cells.xlsx", **options)
    with pytest.raises(nas.MissingDataError, match=r"table .*none.csv not found"):
        make_table(nb201, tmp_path / "none.csv", **options)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(nas.MissingDataError, match=r"broken.parquet cannot be read as parquet"):
        make_table(nb201, tmp_path / "broken.parquet", **options)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(nas.MissingExtraError, match="needs pyarrow: pip install pyarrow, or give a CSV"):
        make_table(nb201, tmp_path / "broken.parquet", **options)
    with pytest.raises(nas.InvalidOptionError, match="nb201-string needs the nb201 space, not 'categorical'"):
        make_table(grid, tmp_path / "none.csv", **options)


def test_registered_under_table_and_created_by_the_registry(tmp_path, nb201):
    nb201_table(tmp_path, nb201)
    created = nas.create_evaluator(
        "table",
        nas.EvaluatorContext(nb201),
        path=str(tmp_path / "cells.csv"),
        key="arch_str",
        key_format="nb201-string",
        metrics={"analog_accuracy": "max"},
    )
    assert created.name == "table" and len(created.archs()) == 3
