"""Zero-cost proxies: synflow against NAS-Bench-Suite-Zero's published scores, determinism without side effects, the
evaluator's options and failures, the published-scores lookup, and the contract of ``nas bench proxies``."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import nas
from evaluators.proxies import DATA_FREE, PROXIES, PROXY_NAMES, ZeroCostEvaluator, score_proxies
from evaluators.published_proxies import PUBLISHED_PROXIES, from_naslib_key, naslib_key
from nas.analysis.bench import BENCH_PROXIES, bench_proxies
from nas.cli.app import main

PUBLISHED_FILE = ("naslib_zc_nb201_sample", "zc_nasbench201.json")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the networks are small, and spare cores may be busy with other work."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def published(data_dir, make_context):
    context = make_context("nb201-published-proxies", "nb201", nas.DataSpec("cifar10", str(data_dir)))
    return nas.create_evaluator("nb201-published-proxies", context)


@pytest.fixture(scope="module")
def zero_cost(make_context):
    def create(space="macro-cnn", seed=0, **options) -> ZeroCostEvaluator:
        """A zero-cost evaluator on digits (macro-cnn is created for their input, 1x8x8)."""
        evaluator = nas.create_evaluator("zero-cost", make_context("zero-cost", space, seed=seed), **options)
        assert isinstance(evaluator, ZeroCostEvaluator)
        return evaluator

    return create


@pytest.fixture(scope="module")
def digits(zero_cost):
    """The evaluator on digits with macro-cnn (input 1x8x8): its space and minibatch serve the proxy tests."""
    return zero_cost(batch_size=16)


def seeded_model(space, arch, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(arch)


def test_synflow_ranks_published_cells_like_the_published_scores(published):
    archs = published.archs()[::18][:40]
    batch = (torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long))  # synflow reads the shape only
    ours = [PROXIES["synflow"](seeded_model(published.space, arch), batch) for arch in archs]
    theirs = [r.metrics["synflow"] for r in published.evaluate(archs)]
    assert len(archs) == 40
    assert spearmanr(ours, theirs).statistic >= 0.9
    # the same definition (log of the sum, BatchNorm removed): the values agree, not only the ranking
    assert np.median(np.abs(np.subtract(ours, theirs))) < 0.5


@pytest.mark.parametrize("proxy", sorted(PROXIES))
def test_proxy_is_deterministic_and_has_no_side_effects(digits, proxy):
    model = seeded_model(digits.space, digits.space.sample(1)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    first = PROXIES[proxy](model, digits.batch)
    second = PROXIES[proxy](model, digits.batch)
    assert math.isfinite(first) and first == second
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # weights and BN statistics
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads


def test_same_seed_same_scores_other_seed_other_weights(digits, zero_cost):
    arch = digits.space.sample(2)
    again = zero_cost(digits.space, batch_size=16, seed=0)
    other = zero_cost(digits.space, batch_size=16, seed=1)
    (a,), (b,), (c,) = (e.evaluate([arch]) for e in (digits, again, other))
    assert dict(a.metrics) == dict(b.metrics)
    assert a.metrics["synflow"] != c.metrics["synflow"]  # another initialization
    assert a.metrics["params"] == c.metrics["params"]


def test_data_dependent_proxies_differ_on_other_data(digits, zero_cost):
    model = seeded_model(digits.space, digits.space.sample(3))
    other = zero_cost(digits.space, batch_size=16, seed=1).batch  # other real digits
    assert not torch.equal(other[0], digits.batch[0])
    ours, theirs = score_proxies(model, digits.batch), score_proxies(model, other)
    for name in PROXIES:
        if name in DATA_FREE:
            assert ours[name] == theirs[name], name
        else:
            assert ours[name] != pytest.approx(theirs[name], rel=1e-6), name


def test_shared_passes_equal_the_single_proxies(digits):
    model = seeded_model(digits.space, digits.space.sample(4))
    together = score_proxies(model, digits.batch)
    assert list(together) == list(PROXIES)
    assert together == {name: fn(model, digits.batch) for name, fn in PROXIES.items()}
    assert score_proxies(model, digits.batch, ["nwot"]) == {"nwot": together["nwot"]}


def test_evaluator_on_digits_with_macro_cnn(digits):
    archs = digits.space.sample_many(3, 5)
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    results = digits.evaluate(archs)
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads
    for arch, result in zip(archs, results, strict=True):
        assert result.ok and list(result.metrics) == list(PROXY_NAMES)
        assert all(math.isfinite(v) for v in result.metrics.values())
        cost = digits.space.cost(arch)
        assert dict(result.costs) == cost.to_dict()
        assert (result.metrics["params"], result.metrics["macs"]) == (cost.params, cost.macs)
        assert result.provenance.seed == 0 and result.provenance.evaluator == "zero-cost"
        details = result.provenance.details
        assert (details["dataset"], details["split"], details["batch_size"], details["input"]) == (
            "digits",
            "train",
            16,
            "1x8x8",
        )
    assert results[0].metrics != results[1].metrics


def test_invalid_architectures_fail_alone(digits):
    good = digits.space.sample(6)
    foreign = nas.Architecture("nb201", "1", {"edge_1_0": "none"})
    results = digits.evaluate([foreign, good])
    assert [r.status for r in results] == [nas.Status.FAILED, nas.Status.OK]
    assert "nb201" in results[0].reason and results[0].metrics == {}


def test_chosen_proxies_only(digits, zero_cost):
    evaluator = zero_cost(digits.space, proxies=["nwot", "macs"], batch_size=16)
    (result,) = evaluator.evaluate([digits.space.sample(0)])
    assert list(result.metrics) == ["nwot", "macs"] and result.provenance.details["proxies"] == ["nwot", "macs"]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"proxies": ["synflow", "zen"]}, ["'zen'", "synflow", "snip", "grad_norm", "jacov", "nwot", "params", "macs"]),
        ({"proxies": []}, ["proxies: got []", "synflow"]),
        ({"proxies": ["nwot", "nwot"]}, ["proxies: got ['nwot', 'nwot']", "distinct"]),
        ({"batch_size": 1}, ["batch_size: got 1", "greater than or equal to 2"]),
        ({"batch_size": 5000}, ["batch_size=5000", "training examples"]),
        ({"space": nas.create_space("nb201", input_shape=(3, 32, 32))}, ["(1, 8, 8)", "(3, 32, 32)", "fit_input"]),
        ({"space": nas.create_space("macro-cnn", input_shape=(1, 8, 8), num_classes=5)}, ["10 classes", "5"]),
        ({"fit_input": "yes"}, ["fit_input: got 'yes'", "valid boolean"]),
    ],
)
def test_evaluator_errors_say_what_is_wrong(options, words, zero_cost):
    with pytest.raises(nas.InvalidOptionError) as error:
        zero_cost(**options)
    assert all(w in str(error.value) for w in words), str(error.value)


def test_fit_input_resizes_and_repeats_channels(zero_cost):
    space = nas.create_space("nb201", input_shape=(3, 16, 16), num_classes=10)
    evaluator = zero_cost(space, proxies=["nwot"], batch_size=8, fit_input=True)
    x, y = evaluator.batch
    assert x.shape == (8, 3, 16, 16) and y.shape == (8,)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2]) and x.std() > 0
    (result,) = evaluator.evaluate([space.sample(0)])
    assert result.ok and result.provenance.details["input"] == "1x8x8 resized to 3x16x16 (channel repeated)"


def test_published_scores_are_the_files(data_dir, published):
    records = json.loads(data_dir.joinpath(*PUBLISHED_FILE).read_text())["cifar10"]
    archs = published.archs()
    assert len(archs) == len(records) == 724 and len(set(archs)) == 724
    key, record = next(iter(records.items()))
    assert naslib_key(published.space, archs[0]) == key
    assert from_naslib_key(published.space, key) == archs[0]
    (result,) = published.evaluate(archs[:1])
    assert {p: result.metrics[p] for p in PUBLISHED_PROXIES} == {p: record[p]["score"] for p in PUBLISHED_PROXIES}
    assert result.costs["params"] == round(record["params"]["score"] * 1e6)
    sample = set(archs)
    outside = next(a for a in published.space.enumerate() if a not in sample)
    (missing,) = published.evaluate([outside])
    assert not missing.ok and "not among the 724 published cells" in missing.reason


def test_published_scores_missing_file_names_the_path(tmp_path, make_context):
    context = make_context("nb201-published-proxies", "nb201", nas.DataSpec("cifar10", str(tmp_path)))
    with pytest.raises(nas.MissingDataError) as error:
        nas.create_evaluator("nb201-published-proxies", context)
    assert str(tmp_path / "naslib_zc_nb201_sample" / "zc_nasbench201.json") in str(error.value)
    with pytest.raises(nas.InvalidOptionError, match="unknown dataset 'svhn'.*cifar10, cifar100, imagenet16-120"):
        make_context("nb201-published-proxies", "nb201", nas.DataSpec("svhn", str(tmp_path)))
    with pytest.raises(nas.InvalidOptionError, match="unknown dataset 'svhn'.*cifar10, cifar100, imagenet16-120"):
        nas.create_evaluator("nb201-published-proxies", replace(context, data=nas.DataSpec("svhn")))


def test_bench_proxies_prints_the_contract(data_dir, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "proxies", "--data-dir", str(data_dir), "--dataset", "cifar100", "--limit", "5", "--json"])
    assert exit_.value.code == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["dataset"] == "cifar100" and row["cells"] == 5 and row["failed"] == 0
    for key in ("spearman_vs_published", "kendall_vs_accuracy", "published_kendall_vs_accuracy"):
        assert list(row[key]) == list(BENCH_PROXIES)
        assert all(-1 <= x <= 1 for x in row[key].values())
    assert row["spearman_vs_published"]["params"] == pytest.approx(1.0)  # analytic params = published params
    assert row["kendall_vs_accuracy"]["params"] == pytest.approx(row["published_kendall_vs_accuracy"]["params"])
    assert row["data_free"] == ["synflow", "params", "macs"]
    assert row["proxy_data"]["dataset"] == "fashion-mnist" and row["proxy_data"]["used_by"] == [
        "snip",
        "grad_norm",
        "jacov",
        "nwot",
    ]
    assert row["proxy_data"]["input"] == "1x28x28 resized to 3x32x32 (channel repeated)"


def test_bench_proxies_rejects_unknown_proxies(data_dir, capsys):
    with pytest.raises(nas.InvalidOptionError, match="grasp.*synflow, snip"):
        bench_proxies(str(data_dir), "cifar10", ["grasp"], limit=4)
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "proxies", "--data-dir", str(data_dir), "--proxies", "zen", "--limit", "4"])
    assert exit_.value.code == 2 and "zen" in capsys.readouterr().err
