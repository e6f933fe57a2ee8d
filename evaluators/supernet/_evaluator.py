"""The ``supernet`` evaluator: trains a weight-sharing supernet once (`prepare`), then scores architectures by their
inherited weights in milliseconds each."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators.data import DataOptions, ReadsDataset, load_data
from evaluators.supernet._mixture import BalancedAssignment
from evaluators.supernet._networks import Supernet, create_supernet, mixture_configurations
from evaluators.supernet._training import Diverged, SupernetTraining, Sync, TrainingPlan, train_supernets
from evaluators.training import (
    SCORED_FIGURES,
    available_cpus,
    recalibrate_batchnorm,
    score,
    space_for_task,
    torch_threads,
)
from nas import (
    Architecture,
    DataSpec,
    EvalResult,
    Evaluator,
    EvaluatorContext,
    Figure,
    InvalidArchitectureError,
    InvalidOptionError,
    NASError,
    Provenance,
    register_evaluator,
)
from nas.core.options import PositiveInt, validate_options

CHECKPOINT = "supernet.pt"
#: The checkpoint's format, part of its settings: 2 since a mixture assigns pooling placements (1: architectures).
CHECKPOINT_FORMAT = 2


class SupernetOptions(TrainingPlan):
    """The options of the ``supernet`` evaluator: its `TrainingPlan` and how subnets are scored (see
    `SupernetEvaluator`)."""

    recalibration_examples: PositiveInt = 256
    eval_examples: PositiveInt | None = 500
    workers: PositiveInt = 1


@register_evaluator("supernet")
class SupernetEvaluator(ReadsDataset, Evaluator):
    """Scores architectures with the weights they inherit from a trained supernet.

    `prepare` trains the supernet (or its mixture) and writes ``workdir/supernet.pt``; a checkpoint already there
    from the same settings is loaded instead, so a resumed search does not train again. `evaluate` then, for each
    architecture, extracts the subnet (a plain ``space.build(arch)`` module), recalibrates its BatchNorm statistics
    on training examples (the shared statistics belong to no subnet in particular), and scores it on the validation
    split: metrics ``accuracy`` (a fraction) and ``loss``, costs from ``space.cost``.

    From its context: the space, the data, the seed (of the supernet's initialization, the subnets drawn and the
    data order) and threads as for the ``train`` evaluator (training uses every CPU available, shared among its
    ``workers``); and, on a search's workers, the checkpoint `prepare` wrote, which it loads.

    Options (`SupernetOptions`):
        variant: "spos" (one uniformly sampled subnet per step), "sandwich" (the largest, the smallest and
            ``sandwich_random`` random subnets per step, the others distilled from the largest) or "mixture"
            (``supernets`` supernets with a learned, balanced assignment of pooling configurations; resnet20-pooling).
        epochs, batch_size, lr, momentum, weight_decay, sandwich_random, supernets, mixture_temperature, sampling,
            kernel_transform, share_widths: see `TrainingPlan`.
        recalibration_examples: training examples that re-estimate an extracted subnet's BatchNorm statistics.
        eval_examples: validation examples each architecture is scored on (the first of the split; all if None).
        workers: data-parallel training workers; more than one trains on Ray Train (``TorchTrainer``, gloo).
    """

    Options = SupernetOptions

    def __init__(self, context: EvaluatorContext, options: SupernetOptions | None = None) -> None:
        options = SupernetOptions() if options is None else options
        plan = options.model_dump(include=set(TrainingPlan.model_fields))
        self.plan = SupernetTraining.model_validate({**plan, "seed": context.seed})
        self.data_spec = context.data
        self.data = load_data(context.data)
        self.space = space_for_task(context.space, self.data, self.name)
        self.recalibration_examples, self.eval_examples = options.recalibration_examples, options.eval_examples
        self.threads = context.threads
        self.workers = options.workers
        self.nets: list[Supernet] | None = None
        self.assignment: BalancedAssignment | None = None
        self.checkpoint: Path | None = None
        self.train_seconds = 0.0
        if context.checkpoint is not None:
            self.load(context.checkpoint)

    def settings(self) -> dict[str, Any]:
        """What the trained supernet depends on: the space, the data and the training plan."""
        return {
            "format": CHECKPOINT_FORMAT,
            "space": self.space.name,
            "space_version": self.space.version,
            "dimensions": hashlib.sha256(
                repr([(d.name, d.options) for d in self.space.dimensions()]).encode()
            ).hexdigest(),
            "dataset": str(self.data_spec.name),
            "data": _data_settings(self.data_spec),
            "task": [list(self.space.input_shape), self.space.num_classes],
            "plan": self.plan.to_dict(),
        }

    def prepare(self, workdir: Path) -> Path:
        """Train the supernet into ``workdir/supernet.pt`` (or load the one there, trained with the same settings)."""
        path = Path(workdir) / CHECKPOINT
        if path.is_file():
            state = self._read(path)
            if state["settings"] == _plain(self.settings()):
                self._restore(state, path)
                return path
        path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        if self.workers > 1:
            from evaluators.supernet._distributed import train_on_ray

            state = train_on_ray(self, self.workers, path.parent)
        else:
            state = self.train()
        state["train_seconds"] = time.perf_counter() - start
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(state, partial)
        os.replace(partial, path)
        self._restore(state, path)
        return path

    def train(self, sync: Sync | None = None, shard: tuple[int, int] = (0, 1)) -> dict[str, Any]:
        """Train here (on one data-parallel ``shard`` with ``sync``); the checkpoint's content."""
        torch.manual_seed(self.plan.seed)
        nets = [self._new_supernet() for _ in range(self.plan.mixture_size)]
        assignment = None
        if self.plan.variant == "mixture":
            assignment = BalancedAssignment(
                mixture_configurations(nets[0]), self.plan.supernets, self.plan.mixture_temperature
            )
        x, y = torch.tensor(self.data.train.x), torch.tensor(self.data.train.y)  # Ray ships the arrays read-only
        with torch_threads(max(1, available_cpus() // shard[1])):  # training has the machine to itself
            try:
                final_loss = train_supernets(nets, x, y, self.plan, assignment, sync, shard)
            except Diverged as error:
                raise NASError(f"{error} (lr={self.plan.lr}); lower the supernet evaluator's lr") from error
        return {
            "settings": _plain(self.settings()),
            "nets": [net.state_dict() for net in nets],
            "assignment": json.dumps(assignment.state()) if assignment else None,
            "final_loss": final_loss,
            "workers": shard[1],
        }

    def load(self, path: Path) -> None:
        """Load a checkpoint written by `prepare`, after checking it was trained for this space and data."""
        self._restore(self._read(path), path)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            return torch.load(path, weights_only=True)  # type: ignore[no-any-return]
        except (OSError, RuntimeError, EOFError) as error:
            raise InvalidOptionError(f"supernet checkpoint {str(path)!r} cannot be read ({error})") from error

    def _restore(self, state: dict[str, Any], path: Path) -> None:
        mine = _plain(self.settings())
        if {k: v for k, v in state["settings"].items() if k != "plan"} != {
            k: v for k, v in mine.items() if k != "plan"
        }:
            raise InvalidOptionError(
                f"supernet checkpoint {str(path)!r} was trained for {state['settings']['space']} on "
                f"{state['settings']['dataset']} with other settings; prepare the evaluator again to train one"
            )
        self.plan = SupernetTraining.model_validate(state["settings"]["plan"])
        nets = [self._new_supernet() for _ in state["nets"]]
        try:
            for net, weights in zip(nets, state["nets"], strict=True):
                net.load_state_dict(weights)
        except RuntimeError as error:  # the space's options (e.g. its widths) differ from the checkpoint's
            raise InvalidOptionError(f"supernet checkpoint {str(path)!r} does not fit this space: {error}") from error
        self.nets = nets
        self.assignment = (
            BalancedAssignment.from_state(json.loads(state["assignment"])) if state["assignment"] else None
        )
        self.checkpoint, self.train_seconds = path, float(state.get("train_seconds", 0.0))

    def supernet_of(self, arch: Architecture) -> int:
        """The index of the supernet ``arch`` inherits from (0 unless a mixture assigns it)."""
        if self.assignment is None or self.nets is None:
            return 0
        return self.assignment.supernet_of(self.nets[0].configuration(arch))

    def subnet(self, arch: Architecture) -> nn.Module:
        """``arch``'s network with its inherited weights and recalibrated BatchNorm statistics."""
        if self.nets is None:
            raise NASError(
                "the supernet evaluator is not trained: call prepare(workdir), or give its context a checkpoint"
            )
        module = self.nets[self.supernet_of(arch)].extract(arch)
        recalibrate_batchnorm(module, torch.from_numpy(self.data.train.x[: self.recalibration_examples]))
        return module

    def figures(self) -> tuple[Figure, ...]:
        return (*SCORED_FIGURES, *self.space.figures())

    def evaluate(self, archs: Sequence[Architecture], budget: Mapping[str, float] | None = None) -> list[EvalResult]:
        """Score each architecture with its inherited weights; ``budget`` is not used (a supernet has one fidelity)."""
        if budget:
            raise InvalidOptionError(f"the supernet evaluator takes no budget; got {dict(budget)}")
        n = self.eval_examples or len(self.data.val)
        x, y = torch.from_numpy(self.data.val.x[:n]), torch.from_numpy(self.data.val.y[:n])
        with torch_threads(self.threads):
            return [self._evaluate_one(arch, x, y) for arch in archs]

    def _evaluate_one(self, arch: Architecture, x: torch.Tensor, y: torch.Tensor) -> EvalResult:
        start = time.perf_counter()
        details: dict[str, Any] = {
            **self.data.record.details(),
            "variant": self.plan.variant,
            "checkpoint": str(self.checkpoint),
            "val_examples": len(y),
            "recalibration_examples": self.recalibration_examples,
        }

        def provenance() -> Provenance:
            return Provenance(self.name, {}, self.plan.seed, time.perf_counter() - start, details)

        try:
            cost = self.space.cost(arch)
            details["supernet"] = self.supernet_of(arch)
            accuracy, loss = score(self.subnet(arch), x, y)
        except InvalidArchitectureError as error:
            return EvalResult.failed(arch, str(error), provenance())
        return EvalResult(arch, {"accuracy": accuracy, "loss": loss}, cost.to_dict(), provenance())

    def _new_supernet(self) -> Supernet:
        options: dict[str, bool] = {"kernel_transform": True} if self.plan.kernel_transform else {}
        if not self.plan.share_widths:
            options["share_widths"] = False
        return create_supernet(self.space, **options)


def _data_settings(data: DataSpec) -> dict[str, Any]:
    """What of the data's options a trained supernet depends on: its split (as a checkpoint of format 2 names it)."""
    options = validate_options(DataOptions, data.options, "dataset options")
    return {"train_size": options.train_size, "val_size": options.val_size, "seed": options.split_seed}


def _plain(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` as JSON would give them back (tuples as lists), so stored and current ones compare equal."""
    return json.loads(json.dumps(settings, default=str))
