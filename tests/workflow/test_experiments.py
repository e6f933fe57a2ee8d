"""The experiments users copy: each config is valid and runs (briefly, in process) end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import nas

EXPERIMENTS = sorted((Path(__file__).resolve().parents[2] / "experiments").glob("*.yaml"))


def test_the_documented_experiments_exist():
    assert {p.stem for p in EXPERIMENTS} >= {
        "quickstart",
        "nb201_pareto",
        "fashion_mnist_pooling",
        "supernet_quickstart",
    }


def _brief(path: Path, folder: Path) -> Path:
    """The experiment with a training (or supernet) evaluator cut to one epoch on a few hundred examples."""
    config = yaml.safe_load(path.read_text())
    if config["evaluator"]["name"] in ("train", "supernet"):
        config["evaluator"]["options"]["epochs"] = 1
        config["dataset"]["options"] = {"train_size": 400, "val_size": 200}
    brief = folder / path.name
    brief.write_text(yaml.safe_dump(config))
    return brief


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_each_experiment_runs(path, tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("NAS_DATA_DIR", str(data_dir))
    config = nas.load_config(path)
    assert config.name == path.stem
    brief = _brief(path, tmp_path)
    command = [sys.executable, "-m", "nas", "search", str(brief), "--out", str(tmp_path), "--no-progress"]
    result = subprocess.run([*command, "--max-evals", "3", "--address", "local"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "3 evaluations (3 ok, 0 failed, 0 pruned)" in result.stdout
    run = nas.load_run(tmp_path / config.name)
    assert len(run.store.results()) == 3 and all(r.ok for r in run.store.results())
    assert (tmp_path / config.name / "report" / "index.html").is_file()
