"""The commands of a user's day on a finished run: search's own outputs, query, export, report, verify."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import nas


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, write_config, digits_training, nas_cli) -> Path:
    """A finished training search on digits, with its report and the best model exported."""
    folder = tmp_path_factory.mktemp("runs")
    config = write_config(
        folder,
        **digits_training,
        budget={"evaluations": 10},
        execution={"address": "local"},
        export={"top": 1, "formats": ["torchscript", "onnx"]},
    )
    result = nas_cli("search", config, "--out", folder, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "Pareto front of digits" in result.stdout
    return folder / "digits"


def test_search_ends_with_the_report_and_the_best_model(run_dir):
    run = nas.load_run(run_dir)
    best = run.pareto()["arch_id"].iloc[0]
    assert (run_dir / "report" / "index.html").is_file()
    exported = run_dir / "export" / best
    assert {p.name for p in exported.iterdir()} == {"arch.json", "model.torchscript.pt", "model.onnx", "MODEL_CARD.md"}


def test_query_json_lists_the_front_with_objectives_and_costs(run_dir, nas_cli):
    result = nas_cli("query", run_dir, "--pareto", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    front = nas.load_run(run_dir).pareto()
    assert [r["arch_id"] for r in rows] == list(front["arch_id"])
    assert {"arch_id", "arch", "accuracy", "macs", "costs"} <= set(rows[0])
    assert nas.Architecture.from_dict(rows[0]["arch"]).arch_id == rows[0]["arch_id"]
    accuracies = [r["accuracy"] for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)


def test_query_filters_sorts_and_writes_csv(run_dir, nas_cli):
    frame = nas.load_run(run_dir).to_dataframe()
    bound = float(frame["macs"].median())
    result = nas_cli("query", run_dir, "--where", f"macs<={bound}", "--sort", "macs", "--top", "3", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    macs = [float(r["macs"]) for r in rows]
    assert macs == sorted(frame.loc[frame["macs"] <= bound, "macs"])[:3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "flops<1"], "no column 'flops'"),
        (["--where", "macs 1"], "cannot read the condition"),
        (["--storage", "sqlite:////nonexistent/x.db"], "no result store at /nonexistent/x.db"),
    ],
)
def test_query_errors_name_the_problem(run_dir, args, message, nas_cli):
    target = [] if "--storage" in args else [run_dir]
    result = nas_cli("query", *target, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_export_uses_the_weights_the_search_trained(run_dir, tmp_path, nas_cli):
    result = nas_cli("export", run_dir, "--best", "--where", "accuracy>=0", "--format", "all", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    run = nas.load_run(run_dir)
    arch_id = run.pareto()["arch_id"].iloc[0]
    folder = tmp_path / arch_id
    card = (folder / "MODEL_CARD.md").read_text()
    assert "trained by the search's train evaluator" in card
    result = {r.arch_id: r for r in run.store.results()}[arch_id]
    kept = torch.load(result.provenance.details["weights"], weights_only=True)
    exported = torch.load(folder / "state_dict.pt", weights_only=True)
    assert all(torch.equal(kept[k], exported[k]) for k in kept)
    session = ort.InferenceSession(str(folder / "model.onnx"))
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)
    scripted = torch.jit.load(folder / "model.torchscript.pt")
    assert np.abs(session.run(None, {"input": x})[0] - scripted(torch.from_numpy(x)).detach().numpy()).max() < 1e-4


def test_report_command_writes_an_offline_page(run_dir, tmp_path, nas_cli):
    result = nas_cli("report", run_dir, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "index.html").read_text()
    assert 'src="http' not in page
    for arch_id in nas.load_run(run_dir).pareto()["arch_id"]:
        assert arch_id in page


def test_verify_retrains_and_saves_the_ranking_agreement_beside_the_store(run_dir, nas_cli):
    store = (run_dir / "store.db").read_bytes()
    result = nas_cli("verify", run_dir, "--sample", "3", "--top", "1")
    assert result.returncode == 0, result.stderr
    assert "Kendall tau" in result.stdout
    report = json.loads((run_dir / "verify.json").read_text())
    assert len(report["trained"]) == 4
    assert -1 <= report["agreement"]["kendall_tau"] <= 1
    assert (run_dir / "store.db").read_bytes() == store  # a read command: the store is left as it was


def test_export_of_a_run_without_weights_or_data_says_to_export_untrained(tmp_path, write_config, nas_cli):
    config = write_config(tmp_path, budget={"evaluations": 4})
    assert nas_cli("search", config, "--out", tmp_path, "--no-progress").returncode == 0
    refused = nas_cli("export", tmp_path / "table", "--best", "--format", "onnx", "-o", tmp_path / "models")
    assert refused.returncode == 2
    assert "--untrained" in refused.stderr and "Traceback" not in refused.stderr
    done = nas_cli("export", tmp_path / "table", "--best", "--format", "onnx", "-o", tmp_path / "models", "--untrained")
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "models").iterdir()
    card = (folder / "MODEL_CARD.md").read_text()
    assert "freshly initialized (untrained)" in card
    assert "## Preprocessing\n\nnot recorded by the nb201-table evaluator\n" in card  # a table has no data to describe
    metadata = ort.InferenceSession(str(folder / "model.onnx")).get_modelmeta().custom_metadata_map
    assert (
        json.loads(metadata["preprocessing"])
        == json.loads(metadata["classes"])
        == "not recorded by the nb201-table evaluator"
    )
