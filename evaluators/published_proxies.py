"""Published zero-cost proxy scores of NAS-Bench-201 cells (NAS-Bench-Suite-Zero), as a lookup evaluator.

The file is NASLib's ``zc_nasbench201.json``: for each of cifar10, cifar100 and ImageNet16-120, about 725 cells with
their validation accuracy and the scores of twelve proxies (`PUBLISHED_PROXIES`). It is read from a data directory,
never copied into the repository: the data's ``data_dir``, else ``NAS_DATA_DIR``; the file lies there in
``naslib_zc_nb201_sample/`` or directly.

A cell is keyed by NASLib's tuple of six operation ids (`NASLIB_OPS`) over the edges in NASLib's order
(`NASLIB_EDGES`), e.g. ``"(0, 2, 3, 2, 3, 1)"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from evaluators.tabular import ReadsBenchmark, benchmark_dataset, benchmark_space, locate, resolve_data_dir
from nas import (
    Architecture,
    Direction,
    EvalResult,
    Evaluator,
    EvaluatorContext,
    Figure,
    InvalidArchitectureError,
    MissingDataError,
    Options,
    Provenance,
    Unit,
    register_evaluator,
)
from search_spaces.nb201 import EDGES, NB201Space, edge_name

#: NASLib's operation ids: ``NASLIB_OPS[i]`` is the operation with id i.
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
#: NASLib's edge order, as (to node, from node): 0->1, 0->2, 0->3, 1->2, 1->3, 2->3.
NASLIB_EDGES = ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))
#: The proxies whose scores the file publishes (``flops`` and ``params`` in millions, for the dataset's network).
PUBLISHED_PROXIES = (
    "synflow",
    "snip",
    "grad_norm",
    "jacov",
    "nwot",
    "grasp",
    "fisher",
    "l2_norm",
    "plain",
    "epe_nas",
    "flops",
    "params",
)
#: Our dataset names -> the file's.
DATASET_KEYS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120"}
PATH = PurePosixPath("naslib_zc_nb201_sample/zc_nasbench201.json")
_DESCRIPTION = (
    "NAS-Bench-Suite-Zero's zc_nasbench201.json (naslib/data/ of the automl/NASLib repository): "
    f'{{"cifar10" | "cifar100" | "ImageNet16-120": {{"(op ids)": {{"val_accuracy", and {{"score"}} for each of '
    f"{', '.join(PUBLISHED_PROXIES)}}}}}}}"
)
_KEY = re.compile(r"^\(([0-4]), ([0-4]), ([0-4]), ([0-4]), ([0-4]), ([0-4])\)$")


def naslib_key(space: NB201Space, arch: Architecture) -> str:
    """NASLib's key of an nb201 cell, e.g. ``"(0, 2, 3, 2, 3, 1)"``."""
    ops = space.ops(arch)
    return "(" + ", ".join(str(NASLIB_OPS.index(ops[edge])) for edge in NASLIB_EDGES) + ")"


def from_naslib_key(space: NB201Space, key: str) -> Architecture:
    """The nb201 cell of NASLib's key; `InvalidArchitectureError` says what the format is."""
    match = _KEY.match(key.strip())
    if not match:
        raise InvalidArchitectureError(
            f"not a NASLib NAS-Bench-201 key: {key!r}; expected six operation ids 0-4 like '(0, 2, 3, 2, 3, 1)'"
        )
    ops = dict(zip(NASLIB_EDGES, (NASLIB_OPS[int(i)] for i in match.groups()), strict=True))
    return space.arch({edge_name(to, frm): ops[(to, frm)] for to, frm in EDGES})


def read_published(root: Path, dataset: str) -> dict[str, dict[str, Any]]:
    """The file's records of ``dataset`` (the file's spelling), checked for the scores of `PUBLISHED_PROXIES`."""
    path = locate(root, PATH, _DESCRIPTION)
    try:
        records = json.loads(path.read_text())[dataset]
        for record in records.values():
            for proxy in PUBLISHED_PROXIES:
                float(record[proxy]["score"])
            float(record["val_accuracy"])
    except (ValueError, KeyError, TypeError) as error:
        raise MissingDataError(
            f"{path} is not the expected file ({type(error).__name__}: {error}); expected {_DESCRIPTION}"
        ) from error
    return records


@register_evaluator("nb201-published-proxies")
class PublishedProxiesEvaluator(ReadsBenchmark, Evaluator):
    """Looks the published zero-cost scores of NAS-Bench-201 cells up (the cells of NAS-Bench-Suite-Zero's sample).

    Metrics: the score of each of `PUBLISHED_PROXIES` as published (``synflow`` is its natural log; ``flops`` and
    ``params`` in millions), and ``val_accuracy`` (percent; for cifar10, of the benchmark's cifar10-valid split).
    Costs: ``macs`` and ``params`` from `NB201Space.cost`. A cell outside the sample is a failed result.

    From its context: the data, cifar10, cifar100 or imagenet16-120 (case-insensitive) with the file's folder as its
    ``data_dir`` (see the module docstring; ``None`` reads ``NAS_DATA_DIR``); the space, the `NB201Space` of the
    dataset's task. It has no options.

    Example:
        >>> context = nas.create_context("nb201-published-proxies", "nb201", "cifar10")  # doctest: +SKIP
        >>> published = nas.create_evaluator("nb201-published-proxies", context)  # doctest: +SKIP
        >>> len(published.archs()), published.evaluate(published.archs()[:1])[0].metrics["synflow"]  # doctest: +SKIP
        (724, 41.948...)
    """

    def __init__(self, context: EvaluatorContext, options: Options | None = None) -> None:
        key = benchmark_dataset(context.data, self.name)
        space = benchmark_space(context.space, key)
        records = read_published(resolve_data_dir(context.data.data_dir), DATASET_KEYS[key])
        self.dataset = key
        self.space = space
        self._scores: dict[Architecture, dict[str, float]] = {}
        for naslib, record in records.items():
            arch = from_naslib_key(space, naslib)
            scores = {proxy: float(record[proxy]["score"]) for proxy in PUBLISHED_PROXIES}
            self._scores[arch] = {**scores, "val_accuracy": float(record["val_accuracy"])}

    def archs(self) -> list[Architecture]:
        """The published cells, in the file's order."""
        return list(self._scores)

    def table(self) -> pd.DataFrame:
        """One row per published cell (in the order of `archs`): ``arch_string``, the published scores,
        ``val_accuracy``, and ``macs`` (``params`` is the published score, as in each result's metrics)."""
        rows = [
            {"arch_string": self.space.to_string(arch), **scores, "macs": self.space.cost(arch).macs}
            for arch, scores in self._scores.items()
        ]
        return pd.DataFrame(rows)

    def figures(self) -> tuple[Figure, ...]:
        """The published scores (higher is better), but ``flops`` and ``params`` (published in millions, and
        minimized like costs: ``params`` reads the published figure, not the space's count), ``val_accuracy`` in
        percent and the space's ``macs``."""
        scores = [Figure(p, Direction.MAX) for p in PUBLISHED_PROXIES if p not in ("flops", "params")]
        counts = [Figure("flops", Direction.MIN), Figure("params", Direction.MIN)]
        macs = [f for f in self.space.figures() if f.name == "macs"]
        return (*scores, *counts, Figure("val_accuracy", Direction.MAX, Unit.PERCENT), *macs)

    def evaluate(self, archs: Sequence[Architecture], budget: Mapping[str, float] | None = None) -> list[EvalResult]:
        """One result per architecture; ``budget`` is ignored."""
        provenance = Provenance(self.name, details={"dataset": self.dataset, "source": "NAS-Bench-Suite-Zero"})
        results = []
        for arch in archs:
            try:
                costs = self.space.cost(arch).to_dict()
            except InvalidArchitectureError as error:
                results.append(EvalResult.failed(arch, str(error), provenance))
                continue
            scores = self._scores.get(arch)
            if scores is None:
                reason = (
                    f"cell {self.space.to_string(arch)} is not among the {len(self._scores)} published cells of "
                    f"{self.dataset}"
                )
                results.append(EvalResult.failed(arch, reason, provenance))
            else:
                results.append(EvalResult(arch, scores, costs, provenance))
        return results
