"""nb201-table against the benchmark's published figures: optima, HW-NAS-Bench latencies, exact costs, failures."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import nas
from evaluators.tabular import DATASETS, DEVICES, NB201TableEvaluator

#: Each dataset's best cell and its accuracy (percent), from the table's SOURCE.md.
OPTIMA = {"cifar10": (6111, 94.373), "cifar100": (9930, 73.513), "imagenet16-120": (857, 47.311)}
#: Cell 0's latency in ms on the HW-NAS-Bench devices (its README; the table rounds raspi4 to 10.482).
CELL_0_MS = {"pixel3": 3.60585, "raspi4": 10.48198, "eyeriss": 3.64562, "fpga": 2.57296}


@pytest.fixture(scope="module")
def table(make_context):
    def create(data_dir=None, dataset="cifar10", space="nb201", **options) -> NB201TableEvaluator:
        """The table of ``dataset`` in ``data_dir`` (None: NAS_DATA_DIR), with the space of its task."""
        data = nas.DataSpec(dataset, None if data_dir is None else str(data_dir))
        evaluator = nas.create_evaluator("nb201-table", make_context("nb201-table", space, data), **options)
        assert isinstance(evaluator, NB201TableEvaluator)
        return evaluator

    return create


@pytest.fixture(scope="module")
def evaluator(data_dir, table):
    return table(data_dir)


@pytest.fixture(scope="module")
def archs(evaluator):
    return evaluator.archs()


def test_constants_name_the_tables_datasets_and_devices(data_dir):
    header = pd.read_csv(data_dir / "nb201_latency_help" / "nb201_latency_27settings.csv", nrows=0)
    assert sorted(DEVICES) == sorted(header.columns.drop(["index", "arch_str"]))
    assert tuple(OPTIMA) == DATASETS


@pytest.mark.parametrize("dataset", DATASETS)
def test_optimum_of_each_dataset(data_dir, dataset, table):
    evaluator = table(data_dir, dataset, devices=[])
    row, best = OPTIMA[dataset]
    frame = evaluator.table()
    assert frame.accuracy.idxmax() == row and frame.accuracy.max() == pytest.approx(best, abs=1e-3)
    (result,) = evaluator.evaluate([evaluator.archs()[row]])
    assert result.metrics == {"accuracy": pytest.approx(best, abs=1e-3)}
    assert result.provenance.details == {"dataset": dataset, "source": "NATS-Bench TSS table", "index": row}
    assert evaluator.space.input_shape == ((3, 16, 16) if dataset == "imagenet16-120" else (3, 32, 32))


def test_latency_of_cell_0_matches_hw_nas_bench(evaluator, archs):
    (result,) = evaluator.evaluate([archs[0]])
    for device, ms in CELL_0_MS.items():
        assert result.costs[f"latency_ms:{device}"] == pytest.approx(ms, abs=1e-3)
    assert len(result.costs) == 2 + len(DEVICES)


def test_costs_are_the_space_costs(evaluator, archs):
    sample = archs[::97]
    for arch, result in zip(sample, evaluator.evaluate(sample), strict=True):
        cost = evaluator.space.cost(arch)
        assert (result.costs["macs"], result.costs["params"]) == (cost.macs, cost.params)


def test_whole_table_evaluates_and_matches_table(evaluator, archs):
    results = evaluator.evaluate(archs)
    assert len(results) == 15625 and all(r.ok for r in results)
    frame = evaluator.table()
    assert list(frame.columns[:4]) == ["arch_string", "accuracy", "macs", "params"]
    assert [r.metrics["accuracy"] for r in results] == frame.accuracy.tolist()
    assert [r.costs["latency_ms:pixel3"] for r in results] == frame["latency_ms:pixel3"].tolist()
    assert [r.costs["macs"] for r in results] == frame.macs.tolist()
    assert [evaluator.index_of(a) for a in archs[:50]] == list(range(50))
    assert [evaluator.space.to_string(a) for a in archs[:50]] == frame.arch_string[:50].tolist()


def test_foreign_architecture_fails_alone(evaluator, archs):
    foreign = nas.Architecture("macro-cnn", "1", {"depth": 2})
    invalid = nas.Architecture("nb201", "1", {**archs[5].choices, "edge_1_0": "conv_7x7"})
    results = evaluator.evaluate([archs[3], foreign, invalid, archs[4]], budget={"epochs": 12})
    assert [r.status for r in results] == [nas.Status.OK, nas.Status.FAILED, nas.Status.FAILED, nas.Status.OK]
    assert "macro-cnn" in results[1].reason and "conv_7x7" in results[2].reason
    assert results[1].metrics == {} and results[1].provenance.evaluator == "nb201-table"
    assert results[3].provenance.details["index"] == 4 and results[3].provenance.fidelity == {"epochs": 200}
    with pytest.raises(nas.InvalidArchitectureError, match="macro-cnn"):
        evaluator.index_of(foreign)


def test_chosen_devices_only(data_dir, table):
    evaluator = table(data_dir, devices="pixel3")
    (result,) = evaluator.evaluate(evaluator.archs()[:1])
    assert set(result.costs) == {"macs", "params", "latency_ms:pixel3"}
    assert list(evaluator.table().columns) == ["arch_string", "accuracy", "macs", "params", "latency_ms:pixel3"]


def test_data_dir_from_environment_or_holding_the_files(data_dir, tmp_path, monkeypatch, table):
    monkeypatch.setenv("NAS_DATA_DIR", str(data_dir))
    evaluator, arch = table(devices=[]), nas.create_space("nb201").sample(0)
    assert evaluator.table().arch_string[evaluator.index_of(arch)] == evaluator.space.to_string(arch)
    shutil.copy(data_dir / "nats_bench_tss_csv" / "nats_bench.csv", tmp_path)
    flat = table(tmp_path, devices=[])
    assert flat.table().accuracy.max() == pytest.approx(94.373, abs=1e-3)


def test_missing_data_dir_says_how_to_set_one(monkeypatch, table):
    monkeypatch.delenv("NAS_DATA_DIR", raising=False)
    with pytest.raises(nas.MissingDataError, match=r"give the dataset's data_dir \(--data-dir .*\) or set NAS_DATA"):
        table()


def test_missing_file_names_the_paths_and_the_table(tmp_path, table):
    with pytest.raises(nas.MissingDataError, match=r"nats_bench\.csv not found at .* NATS-Bench TSS table") as info:
        table(tmp_path)
    assert str(tmp_path / "nats_bench_tss_csv" / "nats_bench.csv") in str(info.value)


def test_latency_file_is_needed_only_for_devices(data_dir, tmp_path, table):
    shutil.copy(data_dir / "nats_bench_tss_csv" / "nats_bench.csv", tmp_path)
    with pytest.raises(nas.MissingDataError, match=r"nb201_latency_27settings\.csv not found .* arch_str"):
        table(tmp_path, devices=["fpga"])


def test_malformed_table_says_what_is_wrong(data_dir, tmp_path, table):
    frame = pd.read_csv(data_dir / "nats_bench_tss_csv" / "nats_bench.csv")
    frame.drop(columns="CIFAR100TestAccuracy200Epochs").head(100).to_csv(tmp_path / "nats_bench.csv", index=False)
    message = "nats_bench.csv lacks the columns CIFAR100TestAccuracy200Epochs and has 100 rows, not 15625"
    with pytest.raises(nas.MissingDataError, match=message):
        table(tmp_path, "cifar100", devices=[])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dataset": "mnist"}, "unknown dataset 'mnist'.*cifar10, cifar100, imagenet16-120"),
        ({"devices": ["pixel3", "tpu"]}, r"unknown devices \['tpu'\].*pixel3"),
        ({"space": nas.create_space("nb201"), "dataset": "cifar100"}, "num_classes=100"),
        ({"space": nas.create_space("macro-cnn")}, "the NAS-Bench-201 tables are of the nb201 space"),
    ],
)
def test_bad_options_name_what_is_accepted(data_dir, options, message, table):
    with pytest.raises(nas.InvalidOptionError, match=message):
        table(data_dir, **options)


def test_registry_creates_it_and_lists_its_options(data_dir, table):
    evaluator = table(data_dir, "CIFAR100", devices=["raspi4"])
    assert evaluator.dataset == "cifar100" and evaluator.space.num_classes == 100
    with pytest.raises(nas.InvalidOptionError, match="evaluator 'nb201-table': epochs: unknown key; accepted: devices"):
        table(data_dir, epochs=200)
