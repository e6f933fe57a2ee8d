"""Datasets with fixed splits: digits, Fashion-MNIST from the shared data, npz files, image folders, clear errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import nas
from evaluators import data as data_module
from evaluators.data import DATASETS, load_dataset

#: The first labels of the official Fashion-MNIST test set (t10k-labels-idx1-ubyte).
T10K_FIRST_LABELS = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Nothing here trains: leave the machine's cores to others."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def indexed_npz(tmp_path):
    """300 8x8 images whose pixels all equal the example's index (so rows identify examples), 3 unequal classes."""
    y = np.repeat([0, 1, 2], [150, 90, 60])
    x = np.broadcast_to(np.arange(300, dtype=np.float32)[:, None, None, None], (300, 1, 8, 8))
    path = tmp_path / "indexed.npz"
    np.savez(path, X=x, y=y)
    return path


def ids(split):
    """The indices of a split's examples in the indexed npz, in split order."""
    return split.x[:, 0, 0, 0].astype(int).tolist()


def test_digits_shapes_classes_and_ranges():
    data = load_dataset("digits")
    assert (data.name, data.input_shape, data.num_classes) == ("digits", (1, 8, 8), 10)
    assert [len(data.train), len(data.val), len(data.test)] == [1079, 359, 359]
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape[1:] == (1, 8, 8) and split.x.min() == 0.0 and split.x.max() == 1.0
        assert set(split.y.tolist()) == set(range(10))


def test_the_recorded_preprocessing_turns_raw_digits_into_each_split():
    digits = pytest.importorskip("sklearn.datasets").load_digits()
    data = load_dataset("digits", seed=1)
    recipe = data.preprocessing
    assert (recipe.raw_dtype, recipe.raw_layout, recipe.raw_range) == ("uint8", "H, W", (0, 16))
    assert (recipe.divide_by, recipe.channels, recipe.mean, recipe.std) == (16.0, "grayscale", None, None)
    for split in (data.train, data.val, data.test):
        np.testing.assert_array_equal(recipe.apply(digits.images[split.index][:, None]), split.x)
        assert split.y.tolist() == digits.target[split.index].tolist()
    assert data.record == nas.DataRecord("digits", recipe, tuple("0123456789"))


def test_splits_are_disjoint_stratified_and_fixed_by_the_seed(indexed_npz):
    data = load_dataset(indexed_npz, seed=3, val_fraction=0.3, test_fraction=0.1)
    train, val, test = ids(data.train), ids(data.val), ids(data.test)
    assert sorted([*train, *val, *test]) == list(range(300))
    assert [len(train), len(val), len(test)] == [180, 90, 30]
    for split, share in ((data.train, 0.6), (data.val, 0.3), (data.test, 0.1)):
        assert np.abs(np.bincount(split.y) - share * np.array([150, 90, 60])).max() <= 1
    again, other = (load_dataset(indexed_npz, seed=s, val_fraction=0.3, test_fraction=0.1) for s in (3, 4))
    assert [ids(again.train), ids(again.val), ids(again.test)] == [train, val, test]
    assert ids(other.val) != val


def test_subsets_are_stratified_nested_and_checked(indexed_npz):
    small, large = (load_dataset(indexed_npz, seed=1, train_size=n, val_size=n // 2) for n in (50, 100))
    assert (len(small.train), len(small.val), len(large.train)) == (50, 25, 100)
    assert set(ids(small.train)) < set(ids(large.train)) and set(ids(small.val)) < set(ids(large.val))
    assert np.abs(np.bincount(large.train.y) - [50, 30, 20]).max() <= 1
    with pytest.raises(nas.InvalidOptionError, match="train_size=500 is out of range; this split has 180 examples"):
        load_dataset(indexed_npz, train_size=500)


def test_fashion_mnist_from_the_data_dir_keeps_the_official_test_set(data_dir):
    data = load_dataset("fashion-mnist", data_dir=data_dir, train_size=1000)
    assert (data.input_shape, data.num_classes, data.classes[9]) == ((1, 28, 28), 10, "Ankle boot")
    assert [len(data.train), len(data.val), len(data.test)] == [1000, 12000, 10000]
    assert data.test.y[:10].tolist() == T10K_FIRST_LABELS
    assert np.bincount(data.test.y).tolist() == [1000] * 10 and np.bincount(data.train.y).tolist() == [100] * 10
    assert data.train.x.dtype == np.float32 and data.train.x.min() == 0.0 and data.train.x.max() == 1.0
    assert data.test.index.tolist() == list(range(10000))
    assert (data.preprocessing.divide_by, data.preprocessing.raw_range) == (255.0, (0, 255))
    with pytest.raises(nas.InvalidOptionError, match="official test split"):
        load_dataset("fashion-mnist", data_dir=data_dir, test_fraction=0.1)


def test_fashion_mnist_found_through_nas_data_dir(data_dir, monkeypatch):
    monkeypatch.setenv("NAS_DATA_DIR", str(data_dir))
    data = load_dataset("Fashion-MNIST", seed=2, train_size=100, val_size=100, val_fraction=0.1)
    assert (len(data.train), len(data.val), len(data.test)) == (100, 100, 10000)
    assert np.bincount(data.val.y).tolist() == [10] * 10


def test_missing_fashion_mnist_names_the_paths_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setattr(data_module, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "system")
    with pytest.raises(nas.MissingDataError) as error:
        load_dataset("fashion-mnist", data_dir=tmp_path / "config")
    message = str(error.value)
    folders = [f"{base}{sub}" for base in ("config", "env") for sub in ("", "/fashion_mnist_debian", "/fashion-mnist")]
    assert f"not found in {', '.join(str(tmp_path / f) for f in [*folders, 'system'])} (" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "https://github.com/zalandoresearch/fashion-mnist" in message


def test_npz_round_trip_adds_a_channel_and_scales_bytes(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (40, 5, 6), dtype=np.uint8), np.arange(40) % 4
    np.savez(tmp_path / "bytes.npz", X=x, y=y)
    data = load_dataset(tmp_path / "bytes.npz", test_fraction=0.25)
    assert (data.input_shape, data.classes) == ((1, 5, 6), ("0", "1", "2", "3"))
    rows = {tuple(row.ravel()): label for row, label in zip(x / np.float32(255), y, strict=True)}
    for split in (data.train, data.val, data.test):
        assert all(rows[tuple(row.ravel())] == label for row, label in zip(split.x, split.y, strict=True))
    recipe = data.preprocessing
    assert (recipe.raw_dtype, recipe.raw_layout, recipe.raw_range, recipe.divide_by) == ("uint8", "H, W", (0, 255), 255)


def test_a_float_npz_is_taken_as_given_and_its_range_recorded(indexed_npz):
    data = load_dataset(indexed_npz)
    recipe = data.preprocessing
    assert (recipe.raw_dtype, recipe.raw_layout, recipe.raw_range, recipe.divide_by) == (
        "float32",
        "C, H, W",
        (0, 299),
        1,
    )
    assert ids(data.val) == data.val.index.tolist()


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"X": np.zeros((4, 1, 2, 2))}, "lacks the array y"),
        ({"X": np.zeros((4, 1, 2, 2)), "y": np.zeros(3, int)}, r"y has shape \(3,\) and dtype int64 for 4 examples"),
        ({"X": np.zeros((4, 2)), "y": np.zeros(4, int)}, r"X has shape \(4, 2\)"),
    ],
)
def test_bad_npz_names_the_file_and_what_is_expected(tmp_path, arrays, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    pattern = rf"{re.escape(str(path))}.*{expected}.*expected a \.npz file with arrays X"
    with pytest.raises(nas.MissingDataError, match=pattern):
        load_dataset(path)


def test_image_folder_in_grey_and_rgb(tmp_path):
    image = pytest.importorskip("PIL.Image", reason="Pillow is not installed: image folders cannot be read")
    rng = np.random.default_rng(0)
    saved = {}
    for label, name in enumerate(("cat", "dog")):
        (tmp_path / name).mkdir()
        for i in range(5):
            pixels = rng.integers(0, 256, (6, 4), dtype=np.uint8)
            image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
            saved[pixels.tobytes()] = label
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    grey = load_dataset(tmp_path, val_fraction=0.2, test_fraction=0.2)
    assert (grey.input_shape, grey.classes, grey.name) == ((1, 6, 4), ("cat", "dog"), str(tmp_path))
    assert sorted([*grey.train.y, *grey.val.y, *grey.test.y]) == [0] * 5 + [1] * 5
    for split in (grey.train, grey.val, grey.test):
        assert [saved[(x * 255).round().astype(np.uint8).tobytes()] for x in split.x] == split.y.tolist()
    rgb = load_dataset(tmp_path, image_size=(3, 2), channels=3)
    assert rgb.input_shape == (3, 3, 2) and np.allclose(rgb.train.x[:, 0], rgb.train.x[:, 2])
    for data, layout, channels in ((grey, "H, W", "grayscale"), (rgb, "H, W, C", "RGB")):
        recipe = data.preprocessing
        assert (recipe.raw_layout, recipe.channels, recipe.divide_by, recipe.raw_range) == (
            layout,
            channels,
            255,
            (0, 255),
        )
    assert "resized to 2x3" in rgb.preprocessing.raw


def test_unknown_names_and_misplaced_options_are_clear_errors(tmp_path):
    with pytest.raises(nas.UnknownNameError, match=f"unknown dataset 'mnist'; give one of {', '.join(DATASETS)}"):
        load_dataset("mnist")
    assert DATASETS == ("digits", "fashion-mnist")
    with pytest.raises(nas.MissingDataError, match="no such image folder"):
        load_dataset(tmp_path / "absent")
    with pytest.raises(nas.InvalidOptionError, match="image folders only"):
        load_dataset("digits", image_size=8)
    with pytest.raises(nas.InvalidOptionError, match="sum below 1"):
        load_dataset("digits", val_fraction=0.5, test_fraction=0.5)


def test_loader_batches_and_seeded_shuffle():
    data = load_dataset("digits", train_size=200)
    batches = list(data.loader("val", batch_size=100))
    assert [tuple(x.shape) for x, _ in batches] == [(100, 1, 8, 8)] * 3 + [(59, 1, 8, 8)]
    assert batches[0][0].dtype == torch.float32 and batches[0][1].dtype == torch.int64
    assert torch.equal(torch.cat([y for _, y in batches]), torch.from_numpy(data.val.y))
    first, again = (next(iter(data.loader("train", 64, shuffle=True, seed=5)))[1] for _ in range(2))
    assert torch.equal(first, again) and not torch.equal(first, torch.from_numpy(data.train.y[:64]))
    with pytest.raises(nas.InvalidOptionError, match="choose train, val or test"):
        data.loader("validation")  # type: ignore[arg-type]
