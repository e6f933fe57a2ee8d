"""The model card carries what a deployer needs: raw samples, preprocessed with nothing but the recipe that the card
and the ONNX file's metadata record, give the recorded validation accuracy; the card names no file that is absent."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

import nas
from evaluators.data import load_dataset
from nas import DataRecord, Preprocessing, Provenance

ort = pytest.importorskip("onnxruntime")
digits = pytest.importorskip("sklearn.datasets").load_digits()

FIDELITY = {"epochs": 1, "fraction": 0.3}


class Exported(NamedTuple):
    run: nas.Run
    result: nas.EvalResult
    folder: Path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """A two-architecture training search on the embedded digits; the most accurate exported with its weights."""
    out = tmp_path_factory.mktemp("card")
    config = nas.ExperimentConfig.model_validate(
        {
            "name": "digits",
            "space": {"name": "macro-cnn", "options": {"input_shape": [1, 8, 8], "num_classes": 10}},
            "dataset": {"name": "digits"},
            "evaluator": {"name": "train", "options": FIDELITY},
            "objectives": ["accuracy", "macs"],
            "strategy": {"name": "random"},
            "budget": {"evaluations": 2},
            "execution": {"address": "local"},
            "export": {"top": 0},
        }
    )
    run = nas.run_search(config, out / "runs", progress=False)
    best = max(run.store.results(), key=lambda r: r.metrics["accuracy"])
    nas.export_run(run, [best.arch_id], out / "export", ("state_dict", "onnx"))
    return Exported(run, best, out / "export" / best.arch_id)


def _preprocess(recipe: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    """The recipe, as a deployer without this package applies it to raw samples."""
    axes = {"H, W": lambda r: r[:, None], "H, W, C": lambda r: r.transpose(0, 3, 1, 2), "C, H, W": lambda r: r}
    assert recipe["layout"] == "N, C, H, W"
    x = axes[recipe["raw_layout"]](raw).astype(recipe["dtype"]) / np.float32(recipe["divide_by"])
    for key, apply in (("mean", np.subtract), ("std", np.divide)):
        if recipe[key] is not None:
            x = apply(x, np.asarray(recipe[key], np.float32)[:, None, None])
    return x


def test_raw_digits_through_the_recipe_in_the_onnx_file_give_the_recorded_accuracy(exported: Exported) -> None:
    session = ort.InferenceSession(str(exported.folder / "model.onnx"), providers=["CPUExecutionProvider"])
    card = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    recipe, classes = card["preprocessing"], card["classes"]
    assert card["metrics_fidelity"] == FIDELITY and card["arch"]["arch_id"] == exported.result.arch_id
    index = load_dataset("digits").val.index  # which raw samples the search validated on; nothing else is used
    raw = digits.images[index]  # float64 (N, 8, 8), intensities 0..16
    assert recipe["raw_range"][0] <= raw.min() and raw.max() <= recipe["raw_range"][1]
    (logits,) = session.run(["logits"], {"input": _preprocess(recipe, raw)})
    predicted = [classes[k] for k in logits.argmax(1)]
    correct = sum(p == str(t) for p, t in zip(predicted, digits.target[index], strict=True))
    assert len(index) == exported.result.provenance.details["val_examples"]
    assert correct / len(index) == card["metrics"]["accuracy"] == exported.result.metrics["accuracy"]
    (unscaled,) = session.run(["logits"], {"input": raw[:, None].astype(np.float32)})
    assert (unscaled.argmax(1) == digits.target[index]).mean() < correct / len(index)  # the scaling matters


def test_the_card_states_the_recipe_the_classes_and_the_fidelity(exported: Exported) -> None:
    text = (exported.folder / "MODEL_CARD.md").read_text()
    assert "as the Preprocessing section says" in text
    assert "## Preprocessing" in text and "| divide_by | 16 |" in text and "| raw_range | [0, 16] |" in text
    assert "| formula | x = (float32(raw) / divide_by - mean) / std |" in text and "| layout | N, C, H, W |" in text
    assert "## Classes\n\n0. 0\n1. 1\n" in text and "9. 9\n" in text
    assert "## Metrics fidelity\n\n| name | value |\n| --- | --- |\n| epochs | 1 |\n| fraction | 0.3 |" in text
    assert "trained by the search's train evaluator" in text
    assert "custom_metadata_map" in text


def _named_files(text: str) -> list[str]:
    return re.findall(r"[\w./-]+\.(?:pt|onnx|json|db)\b", text)


def test_the_card_names_no_file_that_is_absent(exported: Exported, tmp_path: Path) -> None:
    kept_dir = str(exported.run.path / "weights")
    text = (exported.folder / "MODEL_CARD.md").read_text()
    assert kept_dir not in text and "state_dict.pt" in text
    assert all((exported.folder / name).is_file() for name in _named_files(text))
    other = next(r for r in exported.run.store.results() if r.arch_id != exported.result.arch_id)
    Path(other.provenance.details["weights"]).unlink()  # kept weights gone: the export trains them again
    (files,) = nas.export_run(exported.run, [other.arch_id], tmp_path, ("state_dict",)).values()
    text = files["card"].read_text()
    assert "trained for export by the train evaluator (epochs=1, fraction=0.3; validation accuracy" in text
    assert other.provenance.details["weights"] not in text and kept_dir not in text
    assert _named_files(text) and all((tmp_path / other.arch_id / name).is_file() for name in _named_files(text))
    assert sorted(p.name for p in (tmp_path / other.arch_id).iterdir()) == [
        "MODEL_CARD.md",
        "arch.json",
        "state_dict.pt",
    ]


def test_preprocessing_round_trips_through_json_and_normalizes_per_channel() -> None:
    recipe = Preprocessing("an RGB image", "uint8", "H, W, C", (0, 255), 255.0, "RGB", (0.5, 0.4, 0.3), (0.2, 0.2, 0.1))
    assert Preprocessing.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    raw = np.full((2, 3, 4, 4), 255, np.uint8)
    x = recipe.apply(raw)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], [2.5, 3.0, 7.0], rtol=1e-6)
    np.testing.assert_array_equal(x, _preprocess(recipe.to_dict(), raw.transpose(0, 2, 3, 1)))


def test_a_result_without_data_has_no_record() -> None:
    assert DataRecord.recorded(Provenance("nb201-table", {"epochs": 200}, details={"dataset": "cifar10"})) is None
    record = DataRecord("digits", Preprocessing("a digit", "uint8", "H, W", (0, 16), 16.0, "grayscale"), ("0", "1"))
    assert DataRecord.recorded(Provenance("train", details=json.loads(json.dumps(record.details())))) == record
