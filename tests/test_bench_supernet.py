"""`nas bench supernet`: the contract's JSON on small settings, and the ground truth's disk cache."""

from __future__ import annotations

import json

import pytest

from nas.analysis.bench import bench_supernet
from nas.cli.app import main
from nas.core.errors import InvalidOptionError

SMALL = {"epochs": 1, "train_size": 300, "val_size": 200, "budget": 1.0}


def test_the_benchmark_reports_every_variant_and_reuses_its_cached_ground_truth(tmp_path):
    messages: list[str] = []
    row = bench_supernet("resnet20-pooling", "digits", None, 4, cache_dir=tmp_path, progress=messages.append, **SMALL)
    assert {"space", "dataset", "archs", "variants", "standalone_train_seconds"} <= set(row)
    assert row["space"] == "resnet20-pooling" and row["archs"] == 4
    assert set(row["variants"]) == {"spos", "sandwich", "mixture"}
    for figures in row["variants"].values():
        assert {"kendall_tau", "spearman", "precision_at_5", "train_seconds", "eval_ms_per_arch"} <= set(figures)
        assert -1 <= figures["kendall_tau"] <= 1 and figures["train_seconds"] > 0 and figures["eval_ms_per_arch"] > 0
    assert row["standalone_train_seconds"] > 0
    assert sum("(cached)" in m for m in messages) == 0
    messages.clear()
    again = bench_supernet("resnet20-pooling", "digits", None, 4, cache_dir=tmp_path, variants=["spos"],
                           progress=messages.append, **SMALL)  # fmt: skip
    assert sum("(cached)" in m for m in messages) == 4  # nothing of the ground truth is trained again
    assert again["ground_truth"] == row["ground_truth"]


def test_the_command_prints_the_contract_object(tmp_path, capsys):
    args = ["bench", "supernet", "--space", "macro-cnn", "--dataset", "digits", "--archs", "3", "--variants",
            "sandwich", "--epochs", "1", "--train-size", "300", "--val-size", "200", "--budget", "1", "--cache",
            str(tmp_path), "--json"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["space"] == "macro-cnn" and row["dataset"] == "digits" and row["archs"] == 3
    assert set(row["variants"]) == {"sandwich"}


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(InvalidOptionError, match="unknown supernet variants \\['once'\\]"):
        bench_supernet("resnet20-pooling", "digits", None, 4, variants=["once"], cache_dir=tmp_path)
    with pytest.raises(InvalidOptionError, match="archs must be between 2 and the space's 324"):
        bench_supernet("resnet20-pooling", "digits", None, 400, cache_dir=tmp_path, **SMALL)


def test_space_options_make_another_space_with_a_ground_truth_of_its_own(tmp_path):
    row = bench_supernet("resnet20-pooling", "digits", None, 3, variants=["mixture"], cache_dir=tmp_path,
                         space_options={"num_downsample": 1}, **SMALL)  # fmt: skip
    assert row["space_options"] == {"num_downsample": 1}
    (stored,) = [json.loads(path.read_text()) for path in tmp_path.glob("ground-truth-*.json")]
    assert stored["setting"]["options"] == {"num_downsample": 1}
    assert all(set(r["arch"]["choices"]) == {"downsample_at", "downsample_op_1"} for r in stored["results"].values())
