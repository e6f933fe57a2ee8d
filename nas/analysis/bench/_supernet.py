"""Supernets against training from scratch (``nas bench supernet``).

Definitions (contract):

- The space: ``space`` created for the dataset's task with ``space_options`` (the space's defaults when none).
- Ground truth: ``archs`` distinct architectures drawn with ``seed``, each trained from scratch by the ``train``
  evaluator at a fixed fidelity (``epochs`` over ``train_size`` examples) and scored on ``val_size`` validation
  examples; cached on disk (`GroundTruthCache`), so a rerun trains only what is missing.
- ``standalone_train_seconds``: the wall time of training (and scoring) one architecture from scratch at that
  fidelity, measured again in every run, side by side with the supernets, on the first ground-truth architecture.
- Each variant's supernet trains on the same ``train_size`` examples for ``budget`` times the example passes of one
  standalone training (``budget * epochs * train_size`` subnet forward-backward passes, whatever the number of
  subnets a step trains); ``train_seconds`` is its wall time.
- ``eval_ms_per_arch``: the supernet evaluator's time per architecture (extract the subnet, recalibrate BatchNorm,
  score), over the ground-truth architectures in one batch.
- ``kendall_tau``, ``spearman``, ``precision_at_5``: the supernet's validation accuracy against the ground truth's
  (an architecture that failed in either counts as NaN, so it makes the run fail loudly rather than be left out).
- With ``repeat_truth``, ``ground_truth_repeat`` holds the same agreement between two trainings from scratch of the
  same architectures with different seeds: the most a supernet can be expected to reach at this fidelity.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.analysis.bench._ground_truth import GroundTruthCache, default_cache_dir
from nas.analysis.ranking import agreement
from nas.core.capabilities import Prepares
from nas.core.context import create_context
from nas.core.errors import InvalidOptionError
from nas.core.evaluation import DataSpec, EvalResult, Evaluator, create_evaluator
from nas.core.space import Architecture, SearchSpace, as_rng

#: Supernet variants, in report order: the evaluator options that make each.
VARIANTS: dict[str, dict[str, Any]] = {
    "spos": {"variant": "spos"},
    "sandwich": {"variant": "sandwich"},
    "mixture": {"variant": "mixture"},
}


def distinct_archs(space: SearchSpace, count: int, seed: int) -> list[Architecture]:
    """``count`` distinct architectures drawn uniformly with ``seed``."""
    if count < 2 or count > space.size():
        raise InvalidOptionError(f"archs must be between 2 and the space's {space.size()} architectures; got {count}")
    rng, found = as_rng(seed), dict[str, Architecture]()
    while len(found) < count:
        arch = space.sample(rng)
        found.setdefault(arch.arch_id, arch)
    return list(found.values())


def bench_supernet(
    space: str,
    dataset: str,
    data_dir: str | None,
    archs: int = 20,
    *,
    variants: Sequence[str] = tuple(VARIANTS),
    epochs: int = 3,
    train_size: int = 8000,
    val_size: int = 2000,
    budget: float = 4.0,
    seed: int = 0,
    threads: int | None = None,
    cache_dir: str | Path | None = None,
    repeat_truth: bool = False,
    supernet_options: Mapping[str, Any] | None = None,
    space_options: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The contract's figures; ``supernet_options`` are extra options of every variant's evaluator, ``space_options``
    the space's."""
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise InvalidOptionError(f"unknown supernet variants {unknown}; choose among {', '.join(VARIANTS)}")
    say = progress or (lambda _: None)
    data = {"dataset": dataset, "data_dir": data_dir, "train_size": train_size, "val_size": val_size}
    spec = DataSpec(dataset, data_dir, {"train_size": train_size, "val_size": val_size})
    options = dict(space_options or {})
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    context = create_context("train", space, spec, space_options=options, seed=seed, threads=threads or _cpus())
    built: SearchSpace = context.space

    def trained(training_seed: int) -> tuple[Evaluator, list[EvalResult], GroundTruthCache]:
        trainer = create_evaluator("train", dataclasses.replace(context, seed=training_seed), epochs=epochs)
        setting = {"space": built.name, "version": built.version, "options": options, "epochs": epochs,
                   "seed": training_seed, **data}  # fmt: skip
        cache = GroundTruthCache(folder, {**setting, "data_dir": None})

        def reported(result: EvalResult, cached: bool) -> None:
            note = " (cached)" if cached else ""
            say(f"ground truth (seed {training_seed}) {result.arch_id}: {result.value('accuracy'):.4f}{note}")

        return trainer, cache.evaluate(trainer, distinct_archs(built, archs, seed), reported), cache

    trainer, truth, cache = trained(seed)
    chosen = [r.arch for r in truth]
    accuracy = [r.value("accuracy") for r in truth]
    repeat = None
    if repeat_truth:  # the same architectures trained with another seed: how far training agrees with itself
        again = agreement([r.value("accuracy") for r in trained(seed + 1)[1]], accuracy, top_k=5)
        repeat = {"seed": seed + 1, "kendall_tau": again.kendall_tau, "spearman": again.spearman}
    say("timing one standalone training")
    start = time.perf_counter()
    trainer.evaluate(chosen[:1])
    standalone = time.perf_counter() - start
    figures = {}
    for name in variants:
        evaluator = create_evaluator(
            "supernet", context, epochs=budget * epochs, **VARIANTS[name], **(supernet_options or {})
        )
        say(f"training the {name} supernet")
        start = time.perf_counter()
        assert isinstance(evaluator, Prepares)
        with tempfile.TemporaryDirectory() as workdir:  # always trained here: its time is a figure
            evaluator.prepare(Path(workdir))
        training_seconds = time.perf_counter() - start
        start = time.perf_counter()
        scored = evaluator.evaluate(chosen)
        per_arch = (time.perf_counter() - start) * 1000 / len(chosen)
        pairs = [
            (s.value("accuracy"), t.value("accuracy")) for s, t in zip(scored, truth, strict=True) if s.ok and t.ok
        ]
        found = agreement([p[0] for p in pairs], [p[1] for p in pairs], top_k=5)
        figures[name] = {
            "kendall_tau": found.kendall_tau,
            "spearman": found.spearman,
            "precision_at_5": found.precision_at_k,
            "train_seconds": training_seconds,
            "eval_ms_per_arch": per_arch,
            "accuracy": {s.arch_id: s.value("accuracy") for s in scored},
        }
        say(f"{name}: tau {found.kendall_tau:.3f}, train {training_seconds:.0f} s, eval {per_arch:.0f} ms/arch")
    return {
        "space": built.name,
        "space_options": options,
        "dataset": dataset,
        "archs": len(chosen),
        "variants": figures,
        "standalone_train_seconds": standalone,
        "ground_truth": dict(zip([a.arch_id for a in chosen], accuracy, strict=True)),
        "ground_truth_repeat": repeat,
        "cache": str(cache.path),
    }


def _cpus() -> int:
    """The CPUs of this machine: training has it to itself."""
    return os.cpu_count() or 1
