"""Each evaluator declares the figures its results carry, with the direction that is better and the unit: what a
search checks objectives against and takes their directions from."""

from __future__ import annotations

import math

import pytest

import nas

MAX, MIN = nas.Direction.MAX, nas.Direction.MIN


@pytest.fixture(scope="module")
def digits_space():
    return nas.create_space("macro-cnn", input_shape=(1, 8, 8), num_classes=10, depths=(1,))


def _evaluator(name, data_dir, digits_space, make_context):
    tables = nas.DataSpec("cifar10", str(data_dir))
    if name == "nb201-table":
        return nas.create_evaluator(name, make_context(name, "nb201", tables), devices=["pixel3"])
    if name == "nb201-published-proxies":
        return nas.create_evaluator(name, make_context(name, "nb201", tables))
    digits = nas.DataSpec("digits", options={"train_size": 200, "val_size": 100})
    if name == "train":
        return nas.create_evaluator(name, make_context(name, digits_space, digits), epochs=1)
    if name == "zero-cost":
        context = make_context(name, digits_space, digits)
        return nas.create_evaluator(name, context, proxies=["synflow", "params"], batch_size=8)
    table = nas.create_evaluator("nb201-table", make_context("nb201-table", "nb201", tables), devices=[])
    predictor = nas.create_evaluator("predictor", make_context("predictor", "nb201", tables), trusted="nb201-table")
    return predictor.fit(table.evaluate(table.archs()[::1000]))


DECLARED = {
    "nb201-table": {
        "accuracy": (MAX, nas.Unit.PERCENT),
        "latency_ms:pixel3": (MIN, nas.Unit.MS),
        "macs": (MIN, nas.Unit.MACS),
        "params": (MIN, nas.Unit.PARAMS),
    },
    "train": {"accuracy": (MAX, nas.Unit.FRACTION), "loss": (MIN, nas.Unit.NATS), "macs": (MIN, nas.Unit.MACS)},
    "zero-cost": {"synflow": (MAX, nas.Unit.SCORE), "params": (MIN, nas.Unit.PARAMS)},
    "nb201-published-proxies": {"snip": (MAX, nas.Unit.SCORE), "val_accuracy": (MAX, nas.Unit.PERCENT)},
    "predictor": {"accuracy": (MAX, nas.Unit.PERCENT), "accuracy_std": (MIN, nas.Unit.PERCENT)},  # as trusted
}


@pytest.mark.parametrize("name", list(DECLARED))
def test_results_carry_every_declared_figure(name, data_dir, digits_space, make_context):
    evaluator = _evaluator(name, data_dir, digits_space, make_context)
    figures = evaluator.figures()
    declared = {f.name: (f.direction, f.unit) for f in figures}
    assert len(declared) == len(figures), "each figure is declared once"
    assert DECLARED[name].items() <= declared.items()
    looked_up = name in ("nb201-table", "nb201-published-proxies")  # the published cells are a sample
    space = nas.create_space("nb201") if name == "predictor" else digits_space
    archs = evaluator.archs()[:2] if looked_up else space.sample_many(2, 0)
    for result in evaluator.evaluate(archs):
        assert result.ok, result.reason
        assert all(math.isfinite(result.value(f)) for f in declared), {f: result.value(f) for f in declared}
