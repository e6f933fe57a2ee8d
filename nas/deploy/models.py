"""A run's architectures as deployable models, and a check of how well the search's evaluator ranked them.

`export_run` writes an export bundle (`nas.deploy.export.export_model`) per architecture, with the weights the evaluator
kept when it trained the architecture, or weights trained now as the config says, and a model card that says how a
raw sample becomes the network's input. `verify_run` retrains a sample of the found architectures with the `train`
evaluator and compares the orders.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from nas.analysis.ranking import agreement
from nas.core.capabilities import Prepares, WeightSharing
from nas.core.errors import InvalidOptionError, MissingDataError, NASError
from nas.core.evaluation import EvalResult, Provenance
from nas.core.preprocessing import DataRecord
from nas.core.space import NetworkSpace, create_space, network_space
from nas.deploy.export import FORMATS, export_model
from nas.search.config import ExperimentConfig, Named
from nas.search.experiment import PREPARE_DIR, evaluator_context, with_task
from nas.search.run import Run
from nas.search.runners import EvaluatorSpec

VERIFY_FILE = "verify.json"


def run_space(run: Run) -> NetworkSpace:
    """The search space of a run, as its config creates it: a space of networks (export and verify build them)."""
    space = with_task(_config(run)).space
    return network_space(create_space(space.name, **space.options), "exporting a run")


def trainer(run: Run, workdir: Path, **options: Any) -> EvaluatorSpec:
    """The `train` evaluator of a run: the config's own options when the search trained, the defaults otherwise;
    weights kept under ``workdir/weights``; ``options`` override."""
    config = _config(run)
    if config.evaluator.name != "train":
        config = config.model_copy(update={"evaluator": Named(name="train")})
    context = evaluator_context(with_task(config), workdir)
    return EvaluatorSpec("train", context, {**config.evaluator.options, **options})


def export_run(
    run: Run,
    arch_ids: Sequence[str],
    out_dir: str | Path,
    formats: Sequence[str] = FORMATS,
    *,
    untrained: bool = False,
    finetune: int = 0,
) -> dict[str, dict[str, Path]]:
    """Export the architectures ``arch_ids`` of ``run`` to ``out_dir/<arch_id>/``; the files written per id.

    The model card (and the ONNX file's metadata) holds the metrics and the fidelity they were obtained at, the
    costs, how a raw sample becomes the network's input and what its labels name (as the evaluator recorded them),
    the provenance, and where the weights came from.

    Args:
        untrained: export freshly initialized weights instead of training (e.g. to measure latency on a device).
        finetune: train the weights found (kept, or inherited from a supernet) for this many more epochs first.

    Raises:
        InvalidOptionError: an id is not an OK result of the run.
    """
    results = {r.arch_id: r for r in run.store.results() if r.ok}
    missing = [a for a in arch_ids if a not in results]
    if missing:
        raise InvalidOptionError(f"no successful evaluation of {', '.join(missing)} in this run; see `nas query`")
    space, out_dir = run_space(run), Path(out_dir)
    written = {}
    for arch_id in arch_ids:
        result = results[arch_id]
        module = space.build(result.arch)
        weights = None
        if not untrained:
            with tempfile.TemporaryDirectory(prefix="nas-export-") as scratch:  # the bundle holds the weights
                weights = _weights(run, result, Path(scratch))
                if finetune:
                    weights = _finetune(run, result, weights, finetune, Path(scratch) / "finetune")
                module.load_state_dict(torch.load(weights.path, weights_only=True))
        card = _card(run, result, weights)
        written[arch_id] = export_model(module, result.arch, space.input_shape, out_dir / arch_id, formats, card=card)
    return written


class _Weights(NamedTuple):
    """Weights for an export: their file, how they came, and the evaluation that produced them."""

    path: Path
    origin: str
    provenance: Provenance


def _card(run: Run, result: EvalResult, weights: _Weights | None) -> dict[str, Any]:
    """The model card's sections beyond the bundle itself; ``weights`` None for freshly initialized ones."""
    evaluator = result.provenance.evaluator
    data = DataRecord.recorded(weights.provenance if weights else result.provenance)
    unknown = f"not recorded by the {evaluator} evaluator"
    details = {k: v for k, v in result.provenance.details.items() if k not in _NOT_IN_CARD}
    return {
        "preprocessing": data.preprocessing.to_dict() if data else unknown,
        "classes": list(data.classes) if data else unknown,
        "metrics": dict(result.metrics),
        "metrics_fidelity": dict(result.provenance.fidelity) or f"none: the {evaluator} evaluator has one",
        "costs": dict(result.costs),
        "provenance": {**result.provenance.to_dict(), "details": details},
        "run": {"name": run.store.name, "directory": str(run.path) if run.path else "(storage only)"},
        "weights": weights.origin if weights else "freshly initialized (untrained)",
    }


#: Provenance details the card leaves out: the data record (its own sections) and weight files (the bundle's own).
_NOT_IN_CARD = frozenset({"preprocessing", "classes", "weights", "init_weights"})


def _weights(run: Run, result: EvalResult, workdir: Path) -> _Weights:
    """The weights of ``result``'s architecture: those the evaluator kept, those it inherits from the search's
    supernet, else trained now under ``workdir``."""
    kept = result.provenance.details.get("weights")
    if kept and Path(kept).is_file():
        origin = f"trained by the search's {result.provenance.evaluator} evaluator"
        return _Weights(Path(kept), origin, result.provenance)
    config = _config(run)
    if result.provenance.evaluator == config.evaluator.name and run.path is not None:
        context = evaluator_context(with_task(config), run.path)
        evaluator = EvaluatorSpec(config.evaluator.name, context, config.evaluator.options).create()
        if isinstance(evaluator, WeightSharing) and isinstance(evaluator, Prepares):  # the subnet's inherited weights
            evaluator.prepare(run.path / PREPARE_DIR)  # loads the search's trained supernet
            path = workdir / "inherited.pt"
            torch.save(evaluator.subnet(result.arch).state_dict(), path)
            origin = "inherited from the search's supernet, BatchNorm recalibrated"
            return _Weights(path, origin, result.provenance)

    spec = trainer(run, workdir)
    try:
        (trained,) = spec.create().evaluate([result.arch])
    except NASError as error:  # no such data here, or nothing the train evaluator can read
        raise MissingDataError(
            f"the run kept no weights for {result.arch_id} and cannot train it: {error}; "
            "export it untrained (--untrained) or give the dataset's location"
        ) from error
    if not trained.ok:
        raise InvalidOptionError(f"training {result.arch_id} for export failed: {trained.reason}")
    fidelity = ", ".join(f"{k}={v:g}" for k, v in trained.provenance.fidelity.items())
    accuracy = trained.metrics["accuracy"]
    origin = f"trained for export by the train evaluator ({fidelity}; validation accuracy {accuracy:.4f})"
    return _Weights(Path(trained.provenance.details["weights"]), origin, trained.provenance)


def _finetune(run: Run, result: EvalResult, start: _Weights, epochs: int, workdir: Path) -> _Weights:
    """Train ``start`` (weights of ``result``'s architecture) for ``epochs`` more epochs with the train evaluator."""
    (tuned,) = trainer(run, workdir, epochs=epochs, init_weights=str(start.path)).create().evaluate([result.arch])
    if not tuned.ok:
        raise InvalidOptionError(f"fine-tuning {result.arch_id} failed: {tuned.reason}")
    accuracy = tuned.metrics["accuracy"]
    origin = f"{start.origin}, then fine-tuned {epochs} epochs (validation accuracy {accuracy:.4f})"
    return _Weights(Path(tuned.provenance.details["weights"]), origin, tuned.provenance)


def verify_run(run: Run, sample: int, top: int, *, seed: int = 0, **train_options: Any) -> dict[str, Any]:
    """Retrain the ``top`` architectures of the front and ``sample`` others at random with the `train` evaluator,
    and compare the search's order (its first objective) with the trained accuracy; saved with the run.

    Returns:
        ``{"objective", "trained": [{arch_id, search, trained}], "agreement": {kendall_tau, spearman, ...}}``.
    """
    objective = run.objectives[0]
    ok = [r for r in run.store.results() if r.ok]
    front = list(run.pareto()["arch_id"][:top]) if top else []
    others = [r.arch_id for r in ok if r.arch_id not in front]
    picked = front + list(np.random.default_rng(seed).permutation(others)[:sample]) if others else front
    if len(picked) < 2:
        raise InvalidOptionError(f"verify needs at least 2 architectures; this run has {len(ok)} OK results")
    workdir = run.path / "verify" if run.path else Path("verify")
    evaluator = trainer(run, workdir, **train_options).create()
    by_id = {r.arch_id: r for r in ok}
    trained = evaluator.evaluate([by_id[a].arch for a in picked])
    rows = [
        {"arch_id": a, "search": by_id[a].value(objective.name), "trained": t.value("accuracy"), "ok": t.ok}
        for a, t in zip(picked, trained, strict=True)
    ]
    pairs = [(r["search"], r["trained"]) for r in rows if r["ok"]]
    if len(pairs) < 2:
        raise InvalidOptionError(f"only {len(pairs)} of {len(picked)} retrained architectures trained successfully")
    searched, true = zip(*pairs, strict=True)
    report = {
        "objective": objective.name,
        "fidelity": trained[0].provenance.fidelity,
        "trained": rows,
        "agreement": agreement(
            np.asarray(searched) * objective.sign(), true, top_k=max(1, min(5, len(pairs) // 2))
        ).to_dict(),
    }
    if run.path:
        (run.path / VERIFY_FILE).write_text(json.dumps(report, indent=2))
    return report


def _config(run: Run) -> ExperimentConfig:
    if run.config is None:
        raise MissingDataError(f"run {run.store.name!r} has no experiment config: open it by its run directory")
    return run.config
