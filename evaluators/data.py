"""Image classification data for evaluators that train: fixed, seeded train / validation / test splits.

`load_dataset` takes a name from `DATASETS`, a ``.npz`` file or an image folder and returns a `TaskData`. Searches
score architectures on the validation split; the test split is for final reports only.

Each `TaskData` carries the `Preprocessing` that turned its raw samples into the network's input (what the
evaluators record with their results, and an export writes into the model card):

- ``digits``: scikit-learn's 1,797 8x8 digits (embedded, always available), pixels / 16.
- ``fashion-mnist``: the four IDX files (gzipped or not) in ``data_dir``, else ``NAS_DATA_DIR`` (each directly or in
  a ``fashion_mnist_debian`` or ``fashion-mnist`` subfolder), else `FASHION_MNIST_SYSTEM_DIR` where
  ``apt-get install dataset-fashion-mnist`` puts them; pixels / 255. The test split is the official t10k set.
- ``*.npz``: arrays ``X`` (N, C, H, W) or (N, H, W) and ``y`` (N,) with labels 0..K-1; uint8 pixels / 255, other
  dtypes as given.
- an image folder ``root/CLASS_NAME/*.png|jpg`` (needs Pillow), classes in sorted order, pixels / 255.

Example:
    >>> data = load_dataset("digits", seed=0, train_size=500)
    >>> data.input_shape, data.num_classes, len(data.train), len(data.val), len(data.test)
    ((1, 8, 8), 10, 500, 359, 359)
"""

from __future__ import annotations

import gzip
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch.utils.data import DataLoader, TensorDataset

from nas import (
    DataRecord,
    DataSpec,
    InvalidOptionError,
    MissingDataError,
    MissingExtraError,
    Options,
    Preprocessing,
    Task,
    UnknownNameError,
)
from nas.core.options import PositiveInt, Seed, validate_options

#: Where the Debian package ``dataset-fashion-mnist`` installs the IDX files.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = tuple(f"{s}-{kind}-ubyte" for s in ("train", "t10k") for kind in ("images-idx3", "labels-idx1"))
_FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_NPZ = "a .npz file with arrays X (N, C, H, W) or (N, H, W) and y (N,) of integer labels 0..K-1"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SplitName = Literal["train", "val", "test"]


@dataclass(frozen=True, repr=False)
class Split:
    """Examples of one split: ``x`` float32 (N, C, H, W), ``y`` int64 (N,), and ``index``, their positions among the
    raw samples (of the official test set, for an official test split)."""

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"Split(x={self.x.dtype}{list(self.x.shape)}, y={self.y.dtype}{list(self.y.shape)})"


@dataclass(frozen=True)
class TaskData:
    """A classification task, its three disjoint splits and how raw samples became them; ``classes[k]`` names label
    k."""

    name: str
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    train: Split
    val: Split
    test: Split

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def record(self) -> DataRecord:
        """What an evaluator records of this data with each result."""
        return DataRecord(self.name, self.preprocessing, self.classes)

    def loader(self, split: SplitName, batch_size: int = 256, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """Batches ``(x, y)`` of one split; shuffling draws from its own generator seeded with ``seed``."""
        chosen = {"train": self.train, "val": self.val, "test": self.test}.get(split)
        if chosen is None:
            raise InvalidOptionError(f"unknown split {split!r}; choose train, val or test")
        dataset = TensorDataset(torch.from_numpy(chosen.x), torch.from_numpy(chosen.y))
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


class DataOptions(Options):
    """How a dataset is split and read (a config's ``dataset.options``); see `load_dataset`."""

    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    test_fraction: Annotated[float, Field(ge=0, lt=1)] | None = None
    train_size: PositiveInt | None = None
    val_size: PositiveInt | None = None
    split_seed: Seed = 0
    image_size: PositiveInt | Annotated[tuple[PositiveInt, PositiveInt], Field(strict=False)] | None = None
    channels: Literal[1, 3] | None = None

    @model_validator(mode="after")
    def _shares(self) -> DataOptions:
        if self.val_fraction + (self.test_fraction or 0.0) >= 1:
            raise ValueError(
                f"val_fraction={self.val_fraction} and test_fraction={self.test_fraction} must have a sum below 1"
            )
        return self


def load_data(data: DataSpec) -> TaskData:
    """The dataset ``data`` names, split as its options (`DataOptions`) say."""
    options = validate_options(DataOptions, data.options, "dataset options")
    return _load(data.name, data.data_dir, options)


class ReadsDataset:
    """Mixin of the evaluators that read a dataset with `load_data`: their `nas.ReadsData` ability."""

    @classmethod
    def data_options(cls, options: Options) -> type[Options]:
        return DataOptions

    @classmethod
    def data_task(cls, data: DataSpec, options: Options) -> Task:
        loaded = load_data(data)
        return Task(loaded.input_shape, loaded.num_classes)


@dataclass(frozen=True)
class _Source:
    """Raw examples (N, C, H, W), labels, how they become the network's input, and the official test set if any."""

    x: np.ndarray
    y: np.ndarray
    preprocessing: Preprocessing
    classes: tuple[str, ...]
    test: tuple[np.ndarray, np.ndarray] | None = None


def load_dataset(
    name_or_path: str | Path,
    data_dir: str | Path | None = None,
    seed: int = 0,
    *,
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    train_size: int | None = None,
    val_size: int | None = None,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
) -> TaskData:
    """A dataset with fixed splits, stratified by class: the same seed gives the same splits.

    Args:
        name_or_path: one of `DATASETS`, a ``.npz`` file or an image folder (see the module docstring).
        data_dir: where to look for ``fashion-mnist``; ``None`` reads ``NAS_DATA_DIR``.
        seed: the seed of the split and subset draws.
        val_fraction: the share of the examples (for ``fashion-mnist``, of the official train set) held out for
            validation.
        test_fraction: the share held out for testing (default 0.2); not accepted by ``fashion-mnist``, whose test
            split is the official one.
        train_size, val_size: keep only a stratified subset of this many training / validation examples; the subset
            for a smaller size is part of the one for a larger size.
        image_size: image folders only: resize every image to this (H, W) or square size; default the first image's.
        channels: image folders only: 1 (grey) or 3 (RGB); default the first image's.

    Raises:
        InvalidOptionError: an option is out of range (see `DataOptions`) or does not apply to this dataset.
    """
    given: dict[str, Any] = {"val_fraction": val_fraction, "test_fraction": test_fraction, "train_size": train_size,
             "val_size": val_size, "split_seed": seed, "image_size": image_size, "channels": channels}  # fmt: skip
    return _load(name_or_path, data_dir, validate_options(DataOptions, given, "dataset options"))


def _load(name_or_path: str | Path, data_dir: str | Path | None, options: DataOptions) -> TaskData:
    source, name = _source(name_or_path, data_dir, options.image_size, options.channels)
    if source.test is not None and options.test_fraction is not None:
        raise InvalidOptionError(f"{name} has an official test split; test_fraction does not apply")
    test_share = 0.0 if source.test is not None else 0.2 if options.test_fraction is None else options.test_fraction
    if options.val_fraction + test_share >= 1:
        raise InvalidOptionError(
            f"val_fraction={options.val_fraction} and test_fraction={test_share} (the default) must have a sum below 1"
        )
    order = _stratified_order(source.y, np.random.default_rng(options.split_seed))
    n_test, n_val = round(test_share * len(order)), round(options.val_fraction * len(order))
    test, val, train = np.split(order, [n_test, n_test + n_val])
    parts = {
        "train": _take(train, options.train_size, "train_size"),
        "val": _take(val, options.val_size, "val_size"),
        "test": test,
    }
    if source.test is not None:
        parts.pop("test")
    empty = [split for split, idx in parts.items() if len(idx) == 0]
    if empty:
        raise InvalidOptionError(f"the {' and '.join(empty)} split of {name} ({len(order)} examples) would be empty")
    splits = {split: _split(source.x, source.y, idx, source.preprocessing) for split, idx in parts.items()}
    if source.test is not None:
        x_test, y_test = source.test
        splits["test"] = _split(x_test, y_test, np.arange(len(y_test)), source.preprocessing)
    c, h, w = source.x.shape[1:]
    return TaskData(
        name, (c, h, w), source.classes, source.preprocessing, splits["train"], splits["val"], splits["test"]
    )


def _source(
    name_or_path: str | Path,
    data_dir: str | Path | None,
    image_size: int | tuple[int, int] | None,
    channels: int | None,
) -> tuple[_Source, str]:
    """The raw examples a name or path denotes, and the dataset's name."""
    path = Path(name_or_path).expanduser()
    if (image_size, channels) != (None, None) and not path.is_dir():
        raise InvalidOptionError(f"image_size and channels apply to image folders only, not to {name_or_path}")
    key = str(name_or_path).lower()
    if key in _NAMED:
        return _NAMED[key](data_dir), key
    if path.suffix == ".npz":
        return _npz(path), str(path)
    if path.is_dir():
        return _image_folder(path, image_size, channels), str(path)
    if len(path.parts) > 1:
        raise MissingDataError(f"no such image folder: {path.resolve()}")
    raise UnknownNameError(
        f"unknown dataset {name_or_path!r}; give one of {', '.join(DATASETS)}, {_NPZ}, or an image folder"
    )


def _take(idx: np.ndarray, size: int | None, option: str) -> np.ndarray:
    """The first ``size`` indices (a stratified subset, since ``idx`` is a block of a stratified order)."""
    if size is None:
        return idx
    if size > len(idx):
        raise InvalidOptionError(f"{option}={size} is out of range; this split has {len(idx)} examples")
    return idx[:size]


def _split(x: np.ndarray, y: np.ndarray, index: np.ndarray, preprocessing: Preprocessing) -> Split:
    return Split(preprocessing.apply(x[index]), y[index].astype(np.int64), index)


def _stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of ``range(len(y))`` in which every block holds the classes in their overall proportions
    (to within about one example): each example's key is its random rank within its class over the class's size."""
    perm = rng.permutation(len(y))
    labels = y[perm]
    by_class = np.argsort(labels, kind="stable")
    first = np.searchsorted(labels[by_class], labels[by_class])
    rank = np.empty(len(y))
    rank[by_class] = np.arange(len(y)) - first
    return perm[np.argsort((rank + 0.5) / np.bincount(labels)[labels], kind="stable")]


@lru_cache(maxsize=1)
def _digits() -> _Source:
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise MissingExtraError(
            "the digits dataset needs scikit-learn: pip install 'nas-pareto[predictors]'"
        ) from error
    digits = load_digits()
    recipe = Preprocessing(
        "an 8x8 image of scikit-learn's load_digits().images, integer intensities",
        "uint8",
        "H, W",
        (0, 16),
        16.0,
        "grayscale",
    )
    return _Source(digits.images[:, None].astype(np.uint8), digits.target, recipe, tuple(map(str, range(10))))


def _fashion_mnist(data_dir: str | Path | None) -> _Source:
    bases = [Path(b).expanduser() for b in (data_dir, os.environ.get("NAS_DATA_DIR")) if b]
    tried = [
        *(d for b in bases for d in (b, b / "fashion_mnist_debian", b / "fashion-mnist")),
        FASHION_MNIST_SYSTEM_DIR,
    ]
    for directory in tried:
        files = [next((p for p in (directory / f, directory / f"{f}.gz") if p.is_file()), None) for f in _FASHION_FILES]
        if all(files):
            x, y, x_test, y_test = (_read_idx(p) for p in files if p is not None)
            recipe = Preprocessing(
                "a 28x28 Fashion-MNIST image (IDX bytes)", "uint8", "H, W", (0, 255), 255.0, "grayscale"
            )
            return _Source(x[:, None], y, recipe, _FASHION_CLASSES, (x_test[:, None], y_test))
    raise MissingDataError(
        f"Fashion-MNIST not found in {', '.join(map(str, tried))} (the four files {', '.join(_FASHION_FILES)}, gzipped "
        "or not); apt-get install dataset-fashion-mnist, or download the four IDX files from "
        "https://github.com/zalandoresearch/fashion-mnist into a folder given as data_dir or NAS_DATA_DIR"
    )


@lru_cache(maxsize=8)
def _read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (magic 0x0000 0x08 ndim, then ndim big-endian uint32 sizes, then the data)."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = data[3] if data[:3] == b"\x00\x00\x08" and len(data) >= 4 else 0
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", ndim, 4)) if ndim and len(data) >= 4 + 4 * ndim else ()
    if not shape or len(data) != 4 + 4 * ndim + int(np.prod(shape)):
        raise MissingDataError(f"{path} is not a complete IDX file of bytes (magic 0x0801 or 0x0803, sizes, data)")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _npz(path: Path) -> _Source:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = {k: arrays[k] for k in ("X", "y") if k in arrays.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise MissingDataError(f"cannot read {path} ({error}); expected {_NPZ}") from error
    missing = [k for k in ("X", "y") if k not in found]
    if missing:
        raise MissingDataError(f"{path} lacks the array {' and '.join(missing)}; expected {_NPZ}")
    x, y = found["X"], found["y"]
    layout = "H, W" if x.ndim == 3 else "C, H, W"
    x = x[:, None] if x.ndim == 3 else x
    problems = [f"X has shape {x.shape} and dtype {x.dtype}"] if x.ndim != 4 or x.dtype.kind not in "uif" else []
    if y.shape != (len(x),) or y.dtype.kind not in "ui" or len(y) == 0 or y.min() < 0:
        problems.append(f"y has shape {y.shape} and dtype {y.dtype} for {len(x)} examples")
    if problems:
        raise MissingDataError(f"{path}: {' and '.join(problems)}; expected {_NPZ}")
    byte = x.dtype == np.uint8
    recipe = Preprocessing(
        f"one example of the array X of {path.name}",
        x.dtype.name,
        layout,
        (0, 255) if byte else (float(x.min()), float(x.max())),
        255.0 if byte else 1.0,
        "as in X",
    )
    return _Source(x, y, recipe, tuple(map(str, range(int(y.max()) + 1))))


def _image_folder(root: Path, image_size: int | tuple[int, int] | None, channels: int | None) -> _Source:
    try:
        from PIL import Image
    except ImportError as error:
        raise MissingExtraError("reading an image folder needs Pillow: pip install pillow") from error
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    files = [
        (label, f)
        for label, name in enumerate(classes)
        for f in sorted((root / name).iterdir())
        if f.suffix.lower() in _IMAGE_SUFFIXES
    ]
    if not files:
        raise MissingDataError(f"no images in {root}; expected {root}/CLASS_NAME/*.png or *.jpg, one folder per class")
    try:
        with Image.open(files[0][1]) as first:
            grey = channels == 1 or (channels is None and Image.getmodebase(first.mode) == "L")
            height, width = size or (first.height, first.width)
        images = []
        for _, file in files:
            with Image.open(file) as image:
                images.append(np.asarray(image.convert("L" if grey else "RGB").resize((width, height))))
    except OSError as error:
        raise MissingDataError(f"{root} holds an unreadable image ({error})") from error
    x = np.stack(images).reshape(len(images), height, width, -1).transpose(0, 3, 1, 2)
    mode = "L" if grey else "RGB"
    recipe = Preprocessing(
        f"an image file read with Pillow, converted to {mode} and resized to {width}x{height} (bicubic, "
        "Image.resize's default)",
        "uint8",
        "H, W" if grey else "H, W, C",
        (0, 255),
        255.0,
        "grayscale" if grey else "RGB",
    )
    return _Source(x, np.array([label for label, _ in files]), recipe, tuple(classes))


_NAMED: dict[str, Callable[[str | Path | None], _Source]] = {
    "digits": lambda _: _digits(),
    "fashion-mnist": _fashion_mnist,
}
#: The datasets known by name.
DATASETS = tuple(_NAMED)
