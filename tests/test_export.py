"""Export: ONNX and TorchScript files with a free batch dimension that match PyTorch and run without this package,
and `export_model`'s bundle of one architecture (weights, architecture JSON, TorchScript, ONNX, model card)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from torch import nn

import nas
from nas import Architecture, ExportMismatchError, MissingExtraError, check_onnx, export_onnx
from nas.deploy.export import FORMATS, check_torchscript, export_model, export_torchscript, random_input
from nas.search.config import EXPORT_FORMATS

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


# -- export_model: the bundle of one architecture ---------------------------------------------------------------------

BUNDLE_SHAPE = (1, 8, 8)
CARD: dict[str, Any] = {
    "metrics": {"accuracy": 0.875, "loss": 0.41},
    "costs": {"macs": 1234567, "params": 270000},
    "provenance": {"evaluator": "train", "fidelity": {"epochs": 2.0}, "seed": 0},
    "run": "run-7",
    "weights": "trained by the train evaluator for 2 epochs",
}
REPO_ROOT = Path(__file__).resolve().parents[1]


class Bundle(NamedTuple):
    space: nas.SearchSpace
    arch: Architecture
    module: nn.Module
    paths: dict[str, Path]


def _trained_like(space: nas.SearchSpace, arch: Architecture) -> nn.Module:
    """A network of ``arch`` whose weights and batch-norm statistics differ from a freshly built one's."""
    module = space.build(arch)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
        module.train()(random_input(BUNDLE_SHAPE, batch=8, seed=1))  # moves the batch-norm running statistics
    return module


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    space = nas.create_space("resnet20-pooling", input_shape=BUNDLE_SHAPE, num_classes=10)
    arch = space.sample(0)
    module = _trained_like(space, arch)
    module.train()  # export_model must use eval mode and leave the module as it found it
    paths = export_model(module, arch, BUNDLE_SHAPE, tmp_path_factory.mktemp("bundle") / "out", card=CARD)
    assert all(m.training for m in module.modules())
    return Bundle(space, arch, module, paths)


def test_formats_are_the_config_formats() -> None:
    assert FORMATS == EXPORT_FORMATS == ("state_dict", "torchscript", "onnx")


def test_bundle_writes_every_file(bundle: Bundle) -> None:
    names = {"arch": "arch.json", "state_dict": "state_dict.pt", "torchscript": "model.torchscript.pt"}
    names |= {"onnx": "model.onnx", "card": "MODEL_CARD.md"}
    assert list(bundle.paths) == list(names)
    assert {key: path.name for key, path in bundle.paths.items()} == names
    out = bundle.paths["arch"].parent
    assert sorted(p.name for p in out.iterdir()) == sorted(names.values())
    assert all(path.parent == out and path.stat().st_size > 0 for path in bundle.paths.values())


def test_arch_json_round_trips_to_the_same_arch_id(bundle: Bundle) -> None:
    data = json.loads(bundle.paths["arch"].read_text())
    arch_id = data.pop("arch_id")
    assert arch_id == bundle.arch.arch_id
    assert Architecture.from_dict(data) == bundle.arch
    assert Architecture.from_dict(data).arch_id == arch_id


def test_state_dict_rebuilds_identical_outputs(bundle: Bundle) -> None:
    fresh = bundle.space.build(bundle.arch).eval()
    x = random_input(BUNDLE_SHAPE, batch=4, seed=3)
    with torch.inference_mode():
        expected = bundle.module.eval()(x)
        assert not torch.equal(fresh(x), expected)  # the weights matter, so the test below is not vacuous
    fresh.load_state_dict(torch.load(bundle.paths["state_dict"], weights_only=True))
    with torch.inference_mode():
        assert torch.equal(fresh(x), expected)


def test_card_describes_the_bundle(bundle: Bundle) -> None:
    text = bundle.paths["card"].read_text()
    assert bundle.arch.arch_id in text
    for name, value in bundle.arch.choices.items():
        assert name in text and str(value if not isinstance(value, tuple) else list(value)) in text
    assert "(batch, 1, 8, 8)" in text and "(batch, 10)" in text
    assert 'torch.jit.load("model.torchscript.pt")' in text
    assert 'ort.InferenceSession("model.onnx"' in text and '{"input": x}' in text and '["logits"]' in text
    assert "space.build(arch)" in text and "Architecture.from_dict" in text
    assert "## Metrics" in text and "| accuracy | 0.875 |" in text and "| loss | 0.41 |" in text
    assert "| macs | 1234567 |" in text
    assert "- fidelity:\n  - epochs: 2\n" in text and "- evaluator: train" in text
    assert "run-7" in text and CARD["weights"] in text
    assert "| torch vs TorchScript |" in text and "| torch vs onnxruntime |" in text


def test_onnx_metadata_holds_the_architecture_and_the_card(bundle: Bundle) -> None:
    props = {p.key: json.loads(p.value) for p in onnx.load(str(bundle.paths["onnx"])).metadata_props}
    assert props == {"arch": json.loads(bundle.paths["arch"].read_text()), **CARD}
    assert check_onnx(bundle.paths["onnx"], bundle.module, BUNDLE_SHAPE) < 1e-4  # the file with them still matches


BLOCKED_IMPORT_SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import json
    import os
    import sys

    BLOCKED = {"nas", "search_spaces", "evaluators"}


    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: an exported model must load without this project")
            return None


    sys.meta_path.insert(0, Blocker())
    root = os.path.realpath(sys.argv[1])
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != root]
    try:
        import nas  # noqa: F401
    except ImportError:
        nas_blocked = True
    else:
        nas_blocked = False

    import numpy as np
    import onnxruntime as ort
    import torch

    torchscript_path, onnx_path, shape, result = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
    x = np.random.default_rng(0).standard_normal((5, *shape)).astype(np.float32)
    model = torch.jit.load(torchscript_path)
    with torch.inference_mode():
        scripted = model(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(["logits"], {"input": x})
    np.savez(result, x=x, torchscript=scripted)
    loaded = sorted(BLOCKED & {name.partition(".")[0] for name in sys.modules})
    print(json.dumps({
        "nas_blocked": nas_blocked,
        "loaded": loaded,
        "shape": list(scripted.shape),
        "onnx_shape": list(onnx_logits.shape),
        "max_abs_diff": float(np.abs(scripted - onnx_logits).max()),
    }))
    """
)


def test_bundle_loads_where_this_package_is_not_importable(bundle: Bundle, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    args = [str(REPO_ROOT), str(bundle.paths["torchscript"]), str(bundle.paths["onnx"]), json.dumps(BUNDLE_SHAPE)]
    args.append(str(tmp_path / "result.npz"))
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT_SCRIPT, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["nas_blocked"] and report["loaded"] == []
    assert report["shape"] == report["onnx_shape"] == [5, 10]
    assert report["max_abs_diff"] < 1e-4
    result = np.load(tmp_path / "result.npz")
    with torch.inference_mode():
        expected = bundle.module.eval()(torch.from_numpy(result["x"])).numpy()
    np.testing.assert_allclose(result["torchscript"], expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("batch", [1, 7])
def test_torchscript_matches_torch_at_any_batch(bundle: Bundle, batch: int) -> None:
    assert check_torchscript(bundle.paths["torchscript"], bundle.module, BUNDLE_SHAPE, batch=batch) < 1e-5


def test_torchscript_mismatch_reports_the_largest_difference(bundle: Bundle) -> None:
    other = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(ExportMismatchError, match=r"TorchScript and torch outputs differ by up to \d"):
        check_torchscript(bundle.paths["torchscript"], other, BUNDLE_SHAPE)
    with pytest.raises(ExportMismatchError, match=r"TorchScript gives logits of shape \(3, 10\), torch \(3, 4\)"):
        check_torchscript(bundle.paths["torchscript"], nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), BUNDLE_SHAPE)


def test_export_torchscript_restores_flags_and_needs_an_existing_file(tmp_path: Path) -> None:
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.LazyLinear(3))
    module(random_input(BUNDLE_SHAPE, batch=2))  # materialises the lazy layer
    module.train()
    path = export_torchscript(module, BUNDLE_SHAPE, tmp_path / "a" / "b" / "m.pt")
    assert path.is_file() and all(m.training for m in module.modules())
    assert check_torchscript(path, module, BUNDLE_SHAPE) < 1e-5  # dropout and batch norm were traced in eval mode
    with pytest.raises(nas.InvalidOptionError, match="no TorchScript file"):
        check_torchscript(tmp_path / "absent.pt", module, BUNDLE_SHAPE)


def test_unknown_format_is_rejected_before_writing(tmp_path: Path) -> None:
    space = nas.create_space("resnet20-pooling", input_shape=BUNDLE_SHAPE, num_classes=10)
    arch = space.sample(0)
    out = tmp_path / "out"
    with pytest.raises(nas.InvalidOptionError, match=r"'tflite'.*state_dict, torchscript, onnx"):
        export_model(space.build(arch), arch, BUNDLE_SHAPE, out, ("onnx", "tflite"))
    assert not out.exists()


@pytest.mark.parametrize(
    ("formats", "files"),
    [(("state_dict",), {"state_dict.pt"}), (("torchscript",), {"model.torchscript.pt"})],
)
def test_a_subset_of_formats_writes_only_those_files(tmp_path: Path, formats: tuple[str, ...], files: set[str]) -> None:
    space = nas.create_space("resnet20-pooling", input_shape=BUNDLE_SHAPE, num_classes=10)
    arch = space.sample(1)
    paths = export_model(space.build(arch), arch, BUNDLE_SHAPE, tmp_path, formats)
    assert set(paths) == {"arch", *formats, "card"}
    assert {p.name for p in tmp_path.iterdir()} == {"arch.json", "MODEL_CARD.md", *files}
    card = paths["card"].read_text()
    assert arch.arch_id in card and "model.onnx" not in card and "onnxruntime" not in card
    assert ("torch.jit.load" in card) == ("torchscript" in formats)
    assert ("load_state_dict" in card) == ("state_dict" in formats)
