"""ONNX export: a single file with a free batch dimension that matches PyTorch and runs without this package."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nas
from nas import ExportMismatchError, MissingExtraError, check_onnx, export_onnx
from nas.export import random_input

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def nb201() -> nn.Module:
    space = nas.create_space("nb201", input_shape=SHAPE, num_classes=10)
    return space.build(space.sample(0))


@pytest.fixture(scope="module")
def onnx_path(nb201: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    nb201.train()  # the export must use eval mode and leave the module as it found it
    path = export_onnx(nb201, SHAPE, tmp_path_factory.mktemp("export") / "nested" / "dir" / "model.onnx")
    assert nb201.training and all(m.training for m in nb201.modules())
    return path


def test_export_writes_one_valid_file_with_named_dynamic_io(onnx_path: Path) -> None:
    assert onnx_path.is_file()
    assert [p.name for p in onnx_path.parent.iterdir()] == ["model.onnx"]  # weights inside, no .data file
    onnx.checker.check_model(str(onnx_path))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "input" and out.name == "logits"
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == list(SHAPE)
    assert isinstance(out.shape[0], str) and out.shape[1:] == [10]


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_matches_torch(onnx_path: Path, nb201: nn.Module, batch: int) -> None:
    assert check_onnx(onnx_path, nb201, SHAPE, batch=batch) < 1e-3


def test_mismatch_reports_the_largest_difference(onnx_path: Path) -> None:
    other = nn.Sequential(nn.Conv2d(3, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ExportMismatchError, match=r"differ by up to \d"):
        check_onnx(onnx_path, other, SHAPE)


def test_exported_file_runs_without_this_package(onnx_path: Path, nb201: nn.Module, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import onnxruntime as ort

        model, out = sys.argv[1], sys.argv[2]
        x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        (logits,) = session.run(["logits"], {"input": x})
        assert not {"nas", "torch"} & set(sys.modules), "the deployed model must not need nas or torch"
        np.savez(out, x=x, logits=logits)
        """
    )
    out = tmp_path / "result.npz"
    subprocess.run([sys.executable, "-I", "-c", script, str(onnx_path), str(out)], check=True, timeout=120)
    result = np.load(out)
    with torch.inference_mode():
        expected = nb201.eval()(torch.from_numpy(result["x"])).numpy()
    np.testing.assert_allclose(result["logits"], expected, atol=1e-4, rtol=1e-3)


def test_missing_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(MissingExtraError, match=r"onnxscript.*pip install 'nas-pareto\[export\]'"):
        export_onnx(nn.Linear(4, 2), (4,), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_check_onnx_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(nas.InvalidOptionError, match="no ONNX file"):
        check_onnx(tmp_path / "absent.onnx", nn.Linear(4, 2), (4,))


@pytest.mark.parametrize("shape", [(), (3, 0, 32), (3, 32.0, 32), (True, 4)])
def test_bad_input_shape_is_rejected(shape: tuple) -> None:
    with pytest.raises(nas.InvalidOptionError, match="input_shape"):
        random_input(shape)


def test_random_input_is_seeded_and_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    assert torch.equal(random_input(SHAPE, batch=2, seed=5), random_input(SHAPE, batch=2, seed=5))
    assert not torch.equal(random_input(SHAPE, seed=5), random_input(SHAPE, seed=6))
    assert torch.equal(torch.get_rng_state(), state)
