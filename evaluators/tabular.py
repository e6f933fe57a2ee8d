"""NAS-Bench-201 as a lookup table: every cell's test accuracy (NATS-Bench TSS) and its latency on 27 devices (HELP).

The third-party tables are read from a data directory, never copied into the repository: the data's ``data_dir``
(a config's ``dataset.data_dir``, ``--data-dir`` on the command line), else the environment variable
``NAS_DATA_DIR``. The directory holds
``nats_bench_tss_csv/nats_bench.csv`` and ``nb201_latency_help/nb201_latency_27settings.csv``, or the two files
directly. Row i of both tables is the cell with NAS-Bench-201 index i.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, ClassVar

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BeforeValidator, Field

from nas import (
    Architecture,
    DataSpec,
    Direction,
    EvalResult,
    Evaluator,
    EvaluatorContext,
    Figure,
    InvalidArchitectureError,
    InvalidOptionError,
    MissingDataError,
    Options,
    Provenance,
    SearchSpace,
    Task,
    Unit,
    register_evaluator,
)
from search_spaces.nb201 import NB201Space

_SOURCE = "NATS-Bench TSS table"
_EPOCHS = 200


@dataclass(frozen=True)
class _Task:
    """A benchmark dataset: its accuracy column and the task its networks are built for."""

    column: str
    input_shape: tuple[int, int, int]
    num_classes: int


_TASKS = {
    "cifar10": _Task("CIFAR10TestAccuracy200Epochs", (3, 32, 32), 10),
    "cifar100": _Task("CIFAR100TestAccuracy200Epochs", (3, 32, 32), 100),
    "imagenet16-120": _Task("ImageNetTestAccuracy200Epochs", (3, 16, 16), 120),
}
#: The datasets of the accuracy table.
DATASETS = tuple(_TASKS)
#: The device settings of the latency table: GPUs (suffix = batch size), Xeon CPUs, phones, Pixel 3, Raspberry Pi 4,
#: the Eyeriss ASIC and an FPGA.
DEVICES = (
    *(f"{gpu}_{batch}" for gpu in ("1080ti", "2080ti", "titanx", "titanxp", "titan_rtx") for batch in (1, 32, 256)),
    "gold_6226",
    "gold_6240",
    "silver_4114",
    "silver_4210r",
    "essential_ph_1",
    "pixel2",
    "samsung_a50",
    "samsung_s7",
    "pixel3",
    "raspi4",
    "eyeriss",
    "fpga",
)


@dataclass(frozen=True)
class _Table:
    """One third-party CSV: where it lies under the data directory, its architecture-string column, what it is."""

    path: PurePosixPath
    key: str
    description: str

    def read(self, root: Path, columns: Sequence[str], rows: int) -> pd.DataFrame:
        """The table under ``root`` (in its folder or directly there), checked for ``columns`` and ``rows``."""
        path = locate(root, self.path, self.description)
        frame = pd.read_csv(path)
        missing = [c for c in (self.key, *columns) if c not in frame.columns]
        problems = [f"lacks the columns {', '.join(missing)}"] if missing else []
        problems += [f"has {len(frame)} rows, not {rows}"] if len(frame) != rows else []
        problems += ["repeats architecture strings"] if not missing and frame[self.key].duplicated().any() else []
        if problems:
            raise MissingDataError(f"{path} {' and '.join(problems)}; expected {self.description}")
        return frame


_ACCURACY = _Table(
    PurePosixPath("nats_bench_tss_csv/nats_bench.csv"),
    "ArchitectureString",
    "the NATS-Bench TSS table with the columns ArchitectureString and "
    f"{', '.join(t.column for t in _TASKS.values())}, row i = NAS-Bench-201 index i "
    "(nats_bench.csv of the v-tao/nats-bench-landscape repository)",
)
_LATENCY = _Table(
    PurePosixPath("nb201_latency_help/nb201_latency_27settings.csv"),
    "arch_str",
    "the NAS-Bench-201 latency table with the columns arch_str and one per device, row i = NAS-Bench-201 index i "
    "(built from data/nasbench201/latency/*.pt of the HayeonLee/HELP repository)",
)


def locate(root: Path, path: PurePosixPath, description: str) -> Path:
    """The file ``path`` under ``root``, in its folder or directly there; the error says what to put where."""
    tried = [root / path, root / path.name]
    found = next((p for p in tried if p.is_file()), None)
    if found is None:
        raise MissingDataError(f"{path.name} not found at {tried[0]} or {tried[1]}; put there {description}")
    return found


def benchmark_dataset(data: DataSpec, evaluator: str) -> str:
    """The benchmark's name (lower case) of the dataset ``data`` names; the error lists what ``evaluator`` reads."""
    key = str(data.name).lower()
    if key not in _TASKS:
        raise InvalidOptionError(f"unknown dataset {data.name!r} for {evaluator}; choose one of {', '.join(DATASETS)}")
    return key


def benchmark_space(space: SearchSpace, dataset: str) -> NB201Space:
    """``space`` if it is an `NB201Space` built for the benchmark dataset's task; else an `InvalidOptionError`."""
    task = _TASKS[dataset]
    if not isinstance(space, NB201Space):
        raise InvalidOptionError(f"the NAS-Bench-201 tables are of the nb201 space; got space {space.name!r}")
    if space.task != Task(task.input_shape, task.num_classes):
        raise InvalidOptionError(
            f"space is built for input_shape={space.input_shape}, num_classes={space.num_classes}; {dataset} "
            f"needs input_shape={task.input_shape}, num_classes={task.num_classes}"
        )
    return space


class ReadsBenchmark:
    """Mixin of the NAS-Bench-201 table evaluators: their `nas.ReadsData` ability. The data names a benchmark
    dataset (`DATASETS`) and has no options; its task is the benchmark's network's."""

    name: ClassVar[str]

    @classmethod
    def data_options(cls, options: Options) -> type[Options]:
        return Options

    @classmethod
    def data_task(cls, data: DataSpec, options: Options) -> Task:
        task = _TASKS[benchmark_dataset(data, cls.name)]
        return Task(task.input_shape, task.num_classes)


def _devices(names: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [d for d in names if d not in DEVICES]
    if unknown:
        raise ValueError(f"unknown devices {unknown}; choose from {', '.join(DEVICES)}")
    return names


class TableOptions(Options):
    """The options of the ``nb201-table`` evaluator: the latency columns to attach (one name or several); ``None``
    attaches all of `DEVICES`, an empty list none (then the latency table is not needed)."""

    devices: (
        Annotated[
            tuple[str, ...],
            BeforeValidator(lambda names: (names,) if isinstance(names, str) else names),
            AfterValidator(_devices),
            Field(strict=False),
        ]
        | None
    ) = None


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """``data_dir`` if given, else ``NAS_DATA_DIR``; an error says how to set one when neither is."""
    chosen = data_dir if data_dir is not None else os.environ.get("NAS_DATA_DIR")
    if not chosen:
        raise MissingDataError(
            "no data directory for the NAS-Bench-201 tables: give the dataset's data_dir (--data-dir on the command "
            "line) or set NAS_DATA_DIR to the folder that holds nats_bench_tss_csv/ and nb201_latency_help/"
        )
    return Path(chosen).expanduser()


@register_evaluator("nb201-table")
class NB201TableEvaluator(ReadsBenchmark, Evaluator):
    """Looks NAS-Bench-201 cells up in the benchmark's tables: no training, microseconds per architecture.

    Metrics: ``accuracy``, the test accuracy after 200 epochs averaged over the benchmark's seeds, in percent as the
    table gives it (so regrets are in percentage points). Costs: ``macs`` and ``params`` of the dataset's network from
    `NB201Space.cost`, and ``latency_ms:<device>`` for each chosen device (see `DEVICES`).

    From its context: the data, one of `DATASETS` (case-insensitive) with the folder of the tables as its
    ``data_dir`` (``None`` reads ``NAS_DATA_DIR``); the space, an `NB201Space` built for the dataset's task (CIFAR:
    3x32x32 with 10 or 100 classes, ImageNet16-120: 3x16x16 with 120 classes), which a search creates. Options:
    `TableOptions`.

    Example:
        >>> context = nas.create_context("nb201-table", "nb201", "cifar100")  # doctest: +SKIP
        >>> evaluator = nas.create_evaluator("nb201-table", context, devices=["pixel3"])  # doctest: +SKIP
        >>> evaluator.evaluate([evaluator.archs()[9930]])[0].metrics["accuracy"]  # doctest: +SKIP
        73.513...
    """

    Options = TableOptions

    def __init__(self, context: EvaluatorContext, options: TableOptions | None = None) -> None:
        options = TableOptions() if options is None else options
        key = benchmark_dataset(context.data, self.name)
        space = benchmark_space(context.space, key)
        task = _TASKS[key]
        chosen = DEVICES if options.devices is None else options.devices
        root = resolve_data_dir(context.data.data_dir)
        accuracy = _ACCURACY.read(root, [task.column], space.size())
        strings = accuracy[_ACCURACY.key].astype(str)
        latency: dict[str, np.ndarray] = {}
        if chosen:
            frame = _LATENCY.read(root, chosen, space.size())
            if not (frame[_LATENCY.key].astype(str) == strings).all():
                raise MissingDataError(
                    f"{root}: the latency table's rows are not in the accuracy table's order (NAS-Bench-201 index)"
                )
            latency = {f"latency_ms:{d}": frame[d].to_numpy(np.float64) for d in chosen}
        self.dataset = key
        self.devices = chosen
        self.space = space
        self._archs = [space.from_string(s) for s in strings]
        self._rows = {arch: row for row, arch in enumerate(self._archs)}
        costs = [space.cost(arch) for arch in self._archs]
        self._table = pd.DataFrame(
            {
                "arch_string": strings,
                "accuracy": accuracy[task.column].to_numpy(np.float64),
                "macs": [c.macs for c in costs],
                "params": [c.params for c in costs],
                **latency,
            }
        )
        self._cost_keys = ["macs", "params", *latency]
        self._accuracy = self._table["accuracy"].to_numpy()
        self._counts = self._table[["macs", "params"]].to_numpy()
        self._latency = self._table[list(latency)].to_numpy(np.float64)

    def figures(self) -> tuple[Figure, ...]:
        latency = [Figure(key, Direction.MIN, Unit.MS) for key in self._cost_keys[2:]]
        return (Figure("accuracy", Direction.MAX, Unit.PERCENT), *self.space.figures(), *latency)

    def evaluate(self, archs: Sequence[Architecture], budget: Mapping[str, float] | None = None) -> list[EvalResult]:
        """One result per architecture; one outside the space fails with the reason and the rest still evaluate.
        ``budget`` is ignored: the table has one fidelity, 200 epochs."""
        rows: list[int] = []
        reasons: dict[int, str] = {}
        for i, arch in enumerate(archs):
            try:
                rows.append(self.index_of(arch))
            except InvalidArchitectureError as error:
                rows.append(0)
                reasons[i] = str(error)
        accuracy = self._accuracy[rows].tolist()
        costs = [c + t for c, t in zip(self._counts[rows].tolist(), self._latency[rows].tolist(), strict=True)]
        return [
            EvalResult.failed(arch, reasons[i], self._provenance())
            if i in reasons
            else EvalResult(
                arch,
                {"accuracy": accuracy[i]},
                dict(zip(self._cost_keys, costs[i], strict=True)),
                self._provenance(index=rows[i]),
            )
            for i, arch in enumerate(archs)
        ]

    def index_of(self, arch: Architecture) -> int:
        """The NAS-Bench-201 index of ``arch`` (its table row); `InvalidArchitectureError` if it is no nb201 cell."""
        if arch not in self._rows:
            self.space.validate(arch)  # every valid cell is in the table: this raises
        return self._rows[arch]

    def known_costs(self, archs: Sequence[Architecture]) -> dict[str, list[float]]:
        """The costs a user knows without training, by objective name (``macs``, ``params``, ``latency:<device>``):
        counted or looked up, for the predictor-guided strategy."""
        rows = [self.index_of(arch) for arch in archs]
        columns = np.hstack([self._counts[rows], self._latency[rows]])  # in the order of _cost_keys
        return {key.replace("latency_ms:", "latency:"): columns[:, j].tolist() for j, key in enumerate(self._cost_keys)}

    def archs(self) -> list[Architecture]:
        """All 15,625 cells in table order: ``archs()[i]`` has index i."""
        return list(self._archs)

    def table(self) -> pd.DataFrame:
        """Every cell, row = index: ``arch_string``, ``accuracy`` (percent), ``macs``, ``params`` and one
        ``latency_ms:<device>`` column per chosen device (a copy)."""
        return self._table.copy()

    def _provenance(self, **details: int) -> Provenance:
        return Provenance(
            self.name, {"epochs": _EPOCHS}, details={"dataset": self.dataset, "source": _SOURCE, **details}
        )
