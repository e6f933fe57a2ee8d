"""A weight-sharing search through `nas search`: the supernet is trained once, a resume reuses it, and the exported
model carries the weights its architecture inherits (or those fine-tuned from them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nas


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, write_config, digits_training, nas_cli) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    config = write_config(
        folder,
        **{
            **digits_training,
            "name": "shared",
            "evaluator": {"name": "supernet", "options": {"variant": "sandwich", "epochs": 2, "sandwich_random": 1}},
            "strategy": {"name": "evolution"},
        },
        budget={"evaluations": 12},
        execution={"address": "local", "batch_size": 4},
        export={"top": 1, "formats": ["state_dict"]},
    )
    result = nas_cli("search", config, "--out", folder, "--no-progress")
    assert result.returncode == 0, result.stderr
    return folder / "shared"


def test_the_search_trains_one_supernet_and_scores_every_architecture_with_it(run_dir):
    checkpoint = run_dir / "prepare" / "supernet.pt"
    assert checkpoint.is_file()
    results = nas.load_run(run_dir).store.results()
    assert len(results) == 12 and all(r.ok for r in results)
    assert {r.provenance.evaluator for r in results} == {"supernet"}
    assert {r.provenance.details["checkpoint"] for r in results} == {str(checkpoint)}


def test_a_resume_reuses_the_trained_supernet(run_dir, nas_cli):
    checkpoint = run_dir / "prepare" / "supernet.pt"
    stamp = checkpoint.stat().st_mtime_ns
    result = nas_cli("search", run_dir / "config.yaml", "--out", run_dir.parent, "--resume", "--max-evals", "16",
                     "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert checkpoint.stat().st_mtime_ns == stamp
    assert len(nas.load_run(run_dir).store.results()) == 16


def test_the_exported_model_inherits_its_weights_from_the_supernet(run_dir, tmp_path, nas_cli):
    run = nas.load_run(run_dir)
    best = run.pareto().iloc[0]
    result = nas_cli("export", run_dir, "--best", "--format", "state_dict", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    card = (tmp_path / best["arch_id"] / "MODEL_CARD.md").read_text()
    assert "inherited from the search's supernet" in card
    # The exported weights score what the search recorded for this architecture.
    context = nas.create_context("supernet", "macro-cnn", "digits", checkpoint=run_dir / "prepare" / "supernet.pt")
    evaluator = nas.create_evaluator("supernet", context)
    arch = next(r.arch for r in run.store.results() if r.arch_id == best["arch_id"])
    module = evaluator.space.build(arch)
    module.load_state_dict(torch.load(tmp_path / best["arch_id"] / "state_dict.pt", weights_only=True))
    torch.testing.assert_close(module.state_dict(), evaluator.subnet(arch).state_dict())


def test_the_exported_model_can_be_fine_tuned_from_its_inherited_weights(run_dir, tmp_path, nas_cli):
    result = nas_cli("export", run_dir, "--best", "--format", "state_dict", "--finetune", "1", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    (card,) = tmp_path.glob("*/MODEL_CARD.md")
    assert "inherited from the search's supernet" in card.read_text() and "fine-tuned 1 epochs" in card.read_text()


def test_a_supernet_trains_data_parallel_on_ray_train(tmp_path):
    context = nas.create_context("supernet", "resnet20-pooling", "digits")
    evaluator = nas.create_evaluator("supernet", context, variant="mixture", epochs=0.5, workers=2)
    checkpoint = evaluator.prepare(tmp_path)
    assert torch.load(checkpoint, weights_only=True)["workers"] == 2
    assert len(evaluator.nets) == 2
    assert all(r.ok for r in evaluator.evaluate(evaluator.space.sample_many(3, 0)))
