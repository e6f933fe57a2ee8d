"""Performance predictors and the ``predictor`` evaluator, on the real NAS-Bench-201 table."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import nas
from nas.analysis.bench import bench_predictors
from nas.cli.app import main

PREDICTORS = nas.PREDICTORS.names()


@pytest.fixture(scope="module")
def context(data_dir, make_context):
    """NAS-Bench-201 on CIFAR-10: the nb201 space of its task, and the table's data."""
    return make_context("nb201-table", "nb201", nas.DataSpec("cifar10", str(data_dir)))


@pytest.fixture(scope="module")
def table(context):
    return nas.create_evaluator("nb201-table", context, devices=[])


@pytest.fixture(scope="module")
def split(table):
    """60 training cells and 600 test cells, drawn once."""
    archs, accuracy = table.archs(), table.table()["accuracy"].to_numpy()
    order = np.random.default_rng(0).permutation(len(archs))
    train, test = order[:60], order[60:660]
    return [archs[i] for i in train], accuracy[train], [archs[i] for i in test], accuracy[test]


def test_every_predictor_is_registered():
    assert {"random-forest", "lightgbm", "mlp-ensemble", "gp"} <= set(PREDICTORS)


@pytest.mark.parametrize("name", PREDICTORS)
def test_ranks_unseen_cells_and_knows_its_uncertainty(name, table, split):
    train, y_train, test, y_test = split
    predictor = nas.create_predictor(name, table.space, seed=0).fit(train, y_train)
    predicted = predictor.predict(test)
    assert predicted.mean.shape == predicted.std.shape == (len(test),)
    assert nas.agreement(predicted.mean, y_test).kendall_tau > 0.45  # a random forest on one-hot choices: ~0.35
    assert np.isfinite(predicted.std).all() and (predicted.std > 0).all()
    assert predictor.predict(test[:50]).mean == pytest.approx(predicted.mean[:50])  # batch-independent


@pytest.mark.parametrize("name", PREDICTORS)
def test_same_seed_same_predictions(name, table, split):
    train, y_train, test, _ = split
    first, again = (nas.create_predictor(name, table.space, seed=3).fit(train, y_train) for _ in range(2))
    assert (first.predict(test).mean == again.predict(test).mean).all()


@pytest.mark.parametrize("name", PREDICTORS)
def test_learns_a_known_function_of_another_space(name):
    """On a non-cell space (one-hot and cost features), the log of the parameter count is easy to learn."""
    space = nas.create_space("macro-cnn", input_shape=(1, 8, 8))
    archs = space.sample_many(160, 0)
    target = np.log([space.cost(a).params for a in archs])
    predictor = nas.create_predictor(name, space, encoding="onehot", seed=0).fit(archs[:80], target[:80])
    assert nas.agreement(predictor.predict(archs[80:]).mean, target[80:]).kendall_tau > 0.6


def test_isomorphs_get_one_prediction(table, split):
    train, y_train, _, _ = split
    space = table.space
    a = space.from_string("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|")
    b = space.from_string("|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|")
    predicted = nas.create_predictor("random-forest", space).fit(train, y_train).predict([a, b])
    assert predicted.mean[0] == predicted.mean[1]


def test_bad_training_data_is_refused(table, split):
    train, y_train, test, _ = split
    predictor = nas.create_predictor("random-forest", table.space)
    with pytest.raises(nas.InvalidOptionError, match="fit the predictor on evaluated architectures before"):
        predictor.predict(test)
    with pytest.raises(nas.InvalidOptionError, match="got 60 architectures and 59 targets"):
        predictor.fit(train, y_train[:59])
    with pytest.raises(nas.InvalidOptionError, match="1 not finite"):
        predictor.fit(train, np.r_[y_train[:-1], np.nan])
    with pytest.raises(nas.InvalidOptionError, match="predictor 'gp': refit_growth: got 0.5; Input should be greater"):
        nas.create_predictor("gp", table.space, refit_growth=0.5)
    with pytest.raises(nas.UnknownNameError, match="unknown predictor 'xgb'; registered: gp, lightgbm"):
        nas.create_predictor("xgb", table.space)


# -- the predictor evaluator -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared(context, tmp_path_factory):
    evaluator = nas.create_evaluator(
        "predictor", context, trusted="nb201-table", trusted_options={"devices": []}, train_size=80
    )
    checkpoint = evaluator.prepare(tmp_path_factory.mktemp("predictor"))
    return evaluator, checkpoint


def test_prepare_learns_from_the_trusted_evaluator(prepared, table):
    evaluator, checkpoint = prepared
    archs = table.archs()[::31]
    results = evaluator.evaluate(archs)
    assert all(r.ok for r in results) and {"accuracy", "accuracy_std"} == set(results[0].metrics)
    assert results[0].costs["macs"] == table.space.cost(archs[0]).macs
    assert results[0].provenance.details == {"predictor": "random-forest", "trained_on": 80, "trusted": "nb201-table"}
    assert nas.rank_agreement(evaluator, table, archs).kendall_tau > 0.6
    assert len(json.loads(checkpoint.read_text())["archs"]) == 80


def test_checkpoint_refits_the_same_predictor(prepared, table, context, tmp_path):
    evaluator, checkpoint = prepared
    loaded = nas.create_evaluator("predictor", replace(context, checkpoint=checkpoint))  # as on a search's worker
    archs = table.archs()[:200]
    assert [r.metrics for r in loaded.evaluate(archs)] == [r.metrics for r in evaluator.evaluate(archs)]
    with pytest.raises(nas.InvalidOptionError, match="written for \\(predictor, metric, seed, space\\)"):
        nas.create_evaluator("predictor", replace(context, checkpoint=checkpoint), predictor="lightgbm")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(nas.MissingDataError, match="is not a predictor checkpoint"):
        nas.create_evaluator("predictor", replace(context, checkpoint=broken))


def test_options_are_checked_with_those_of_the_predictor_and_the_trusted_evaluator(context):
    for options, message in [
        ({"predictor": "xgb"}, "predictor: got 'xgb'; unknown predictor 'xgb'; registered: gp"),
        ({"trusted": "oracle"}, "trusted: got 'oracle'; unknown evaluator 'oracle'; registered:"),
        ({"train_size": 1}, "train_size: got 1; Input should be greater than or equal to 2"),
        ({"predictor_options": {"depth": 3}}, "predictor 'random-forest': depth: unknown key; accepted: encoding"),
        ({"trusted": "nb201-table", "trusted_options": {"devices": "tpu"}}, "nb201-table': devices: got 'tpu'"),
        ({"trusted_options": {"devices": []}}, "trusted_options apply to a trusted evaluator; give trusted too"),
    ]:
        with pytest.raises(nas.InvalidOptionError) as info:
            nas.create_evaluator("predictor", context, **options)
        assert str(info.value).startswith("evaluator 'predictor': ") and message in str(info.value), str(info.value)


def test_fits_on_given_results_and_fails_only_bad_architectures(table, context):
    evaluator = nas.create_evaluator("predictor", context, predictor="lightgbm")
    with pytest.raises(nas.InvalidOptionError, match="call prepare \\(or fit\\) before evaluate"):
        evaluator.evaluate(table.archs()[:2])
    with pytest.raises(nas.InvalidOptionError, match="has no data to learn from"):
        evaluator.prepare(__import__("pathlib").Path("unused"))
    results = table.evaluate(table.archs()[:50])
    failed = nas.EvalResult.failed(table.archs()[60], "diverged", results[0].provenance)
    evaluator.fit([*results, failed])
    assert evaluator.training is not None and len(evaluator.training[0]) == 50
    other = nas.create_space("macro-cnn", input_shape=(1, 8, 8)).sample(0)
    out = evaluator.evaluate([table.archs()[100], other])
    assert out[0].ok and not out[1].ok and "belongs to space 'macro-cnn'" in out[1].reason
    with pytest.raises(nas.InvalidOptionError, match="1 of 1 results have a finite 'accuracy'; at least 2"):
        evaluator.fit(results[:1])


# -- the benchmark --------------------------------------------------------------------------------------------------
def test_bench_contract(data_dir, capsys):
    row = bench_predictors(str(data_dir), "imagenet16-120", 40, 2, ["random-forest", "mlp-ensemble"])
    assert row["dataset"] == "imagenet16-120" and row["train_size"] == 40 and row["seeds"] == 2
    for key in ("kendall_tau", "spearman", "fit_seconds"):
        assert set(row[key]) == {"random-forest", "mlp-ensemble"} and set(row[key]["random-forest"]) == {
            "mean",
            "median",
        }
    assert row["kendall_tau"]["random-forest"]["mean"] > 0.5
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "bench",
                "predictors",
                "--data-dir",
                str(data_dir),
                "--train-size",
                "20",
                "--seeds",
                "1",
                "--predictors",
                "random-forest",
                "--json",
            ]
        )
    assert exit_info.value.code == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(printed) == {"dataset", "train_size", "seeds", "kendall_tau", "spearman", "fit_seconds"}


def test_bench_rejects_bad_sizes(data_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "predictors", "--data-dir", str(data_dir), "--train-size", "15625", "--seeds", "1"])
    assert exit_info.value.code == 2
    assert "train_size must be between 2 and 15624" in capsys.readouterr().err
