"""Zero-cost proxies against published scores and NAS-Bench-201's accuracy (``nas bench proxies``).

The cells are those of NAS-Bench-Suite-Zero's published sample for the dataset (724 or 725). Each proxy of the
``zero-cost`` evaluator scores them on the dataset's NAS-Bench-201 network (CIFAR: 3x32x32, ImageNet16-120: 3x16x16);
the ``nb201-published-proxies`` evaluator gives the published scores and the ``nb201-table`` evaluator the test
accuracy after 200 epochs.

Definitions (contract):

- ``spearman_vs_published[p]``: Spearman's rho between our scores of proxy p and the published ones (`PUBLISHED_AS`
  maps ``macs`` to the published ``flops``). Meaningful as a reproduction check for the data-free proxies
  (`DATA_FREE`: synflow, params, macs); the data-dependent ones are scored on the minibatch described by
  ``proxy_data``, which is not the benchmark's images when those are not at hand, and with our own weight
  initialization.
- ``kendall_vs_accuracy[p]``: Kendall's tau-b between our scores of p and the test accuracy;
  ``published_kendall_vs_accuracy[p]`` the same for the published scores, as a reference.
- A score that is undefined (NaN, e.g. a failed evaluation) ranks below every other; ``-inf`` (a network whose
  output ignores its input or weights) ranks lowest as well.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nas.core.capabilities import TabularLookup
from nas.core.context import create_context
from nas.core.errors import InvalidOptionError
from nas.core.evaluation import DataSpec, EvalResult, create_evaluator

#: The proxies of the benchmark, in report order.
BENCH_PROXIES = ("synflow", "snip", "grad_norm", "jacov", "nwot", "params", "macs")
#: Our proxy -> the published proxy it is compared with.
PUBLISHED_AS = {p: ("flops" if p == "macs" else p) for p in BENCH_PROXIES}
#: The proxies that do not look at the data (synflow uses only the input shape).
DATA_FREE = ("synflow", "params", "macs")
#: The default dataset of the data-dependent proxies' minibatch: real images that are at hand (resized and
#: channel-repeated to the network's input shape), since the benchmark's own images are not.
PROXY_DATASET = "fashion-mnist"
_CHUNK = 25


def _ranked(values: Sequence[float]) -> np.ndarray:
    """``values`` with NaN replaced by -inf, so that an undefined score ranks lowest."""
    array = np.asarray(values, dtype=float)
    return np.where(np.isnan(array), -math.inf, array)


def _correlation(statistic: Callable[..., Any], ours: Sequence[float], theirs: Sequence[float]) -> float:
    return float(statistic(_ranked(ours), _ranked(theirs)).statistic)


def bench_proxies(
    data_dir: str | None,
    dataset: str = "cifar10",
    proxies: Sequence[str] | None = None,
    *,
    proxy_dataset: str = PROXY_DATASET,
    batch_size: int = 32,
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Rank agreement of zero-cost proxies with the published scores and with NAS-Bench-201's test accuracy.

    Args:
        data_dir: folder with the NAS-Bench-201 table, the published scores and ``proxy_dataset``'s files (if it
            needs any); ``None`` reads ``NAS_DATA_DIR``.
        dataset: cifar10, cifar100 or imagenet16-120.
        proxies: names of `BENCH_PROXIES`; ``None`` chooses all.
        proxy_dataset: the dataset (see ``zero-cost``'s ``dataset`` option) whose training split gives the minibatch
            of the data-dependent proxies, fitted to the network's input shape.
        batch_size: examples in that minibatch (32 is the batch size of the published scores).
        seed: seeds the weight initialization and the minibatch.
        limit: score only the first ``limit`` published cells (for quick checks); ``None`` scores all.
        progress: called with (cells done, cells) after each chunk of cells.

    Returns:
        ``{"dataset", "cells", "spearman_vs_published", "kendall_vs_accuracy", "published_kendall_vs_accuracy",
        "data_free", "proxy_data", "failed", "seed", "wall_time_s"}``: see the module docstring; ``failed`` counts the
        cells the zero-cost evaluator could not score.
    """
    chosen = tuple(BENCH_PROXIES if proxies is None else proxies)
    unknown = [p for p in chosen if p not in BENCH_PROXIES]
    if unknown or not chosen:
        raise InvalidOptionError(
            f"unknown proxies {', '.join(map(repr, unknown)) or '(none given)'}; choose from {', '.join(BENCH_PROXIES)}"
        )
    if limit is not None and limit < 2:
        raise InvalidOptionError(f"limit must be at least 2 cells (for a rank correlation); got {limit}")
    start = time.perf_counter()
    context = create_context("nb201-table", "nb201", DataSpec(dataset, data_dir))
    table = create_evaluator("nb201-table", context, devices=[])
    published = create_evaluator("nb201-published-proxies", context)
    assert isinstance(published, TabularLookup)
    archs = published.archs()[:limit]
    proxy_data = create_context("zero-cost", context.space, DataSpec(proxy_dataset, data_dir), seed=seed)
    scorer = create_evaluator("zero-cost", proxy_data, proxies=list(chosen), batch_size=batch_size, fit_input=True)
    ours: list[EvalResult] = []
    for first in range(0, len(archs), _CHUNK):
        ours += scorer.evaluate(archs[first : first + _CHUNK])
        if progress is not None:
            progress(len(ours), len(archs))
    theirs = published.evaluate(archs)
    accuracy = [r.value("accuracy") for r in table.evaluate(archs)]
    scores = {p: [r.value(p) for r in ours] for p in chosen}
    published_scores = {p: [r.value(PUBLISHED_AS[p]) for r in theirs] for p in chosen}
    details = {k: ours[0].provenance.details[k] for k in ("dataset", "split", "batch_size", "input")}
    from scipy.stats import kendalltau, spearmanr  # imported when needed: scipy.stats is slow to import

    return {
        "dataset": dataset,
        "cells": len(archs),
        "spearman_vs_published": {p: _correlation(spearmanr, scores[p], published_scores[p]) for p in chosen},
        "kendall_vs_accuracy": {p: _correlation(kendalltau, scores[p], accuracy) for p in chosen},
        "published_kendall_vs_accuracy": {p: _correlation(kendalltau, published_scores[p], accuracy) for p in chosen},
        "data_free": [p for p in chosen if p in DATA_FREE],
        "proxy_data": {
            **details,
            "used_by": [p for p in chosen if p not in DATA_FREE],
            "published_scores_used": f"{dataset} images",
        },
        "failed": sum(not r.ok for r in ours),
        "seed": seed,
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
