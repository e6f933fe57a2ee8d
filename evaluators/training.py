"""The ``train`` evaluator: trains each architecture on a dataset's training split at a fidelity budget and scores it
on the validation split.

The fidelity is a number of ``epochs`` and a ``fraction`` of the training split (a stratified subset: the first
examples of the split, so the subset for a smaller fraction is part of the one for a larger fraction). Training is
SGD with Nesterov momentum and weight decay, the learning rate annealed to zero by a cosine schedule over the
budget's steps (the NAS-Bench-201 recipe), and cross-entropy, optionally with label smoothing. After training, the
BatchNorm statistics are re-estimated on training examples, since a short training leaves them behind the weights.

Runs are seeded and, on the CPU with a given number of threads, bit-for-bit deterministic: each architecture's weight
initialization and data order come from a seed derived from the evaluator's seed and the architecture's id, so a
result does not depend on the batch it was evaluated in or on what ran before; the global torch RNG state and thread
count are left as they were. (Another thread count changes the order of floating-point sums, so the last digits.)
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field, FilePath, field_validator
from torch import nn
from torch.nn import functional as F

from evaluators.data import ReadsDataset, TaskData, load_data
from nas import (
    Architecture,
    Direction,
    EvalResult,
    Evaluator,
    EvaluatorContext,
    Figure,
    InvalidArchitectureError,
    InvalidOptionError,
    NetworkSpace,
    Options,
    Provenance,
    SearchSpace,
    Task,
    Unit,
    network_space,
    register_evaluator,
)
from nas.core.options import Fraction, PositiveFloat, PositiveInt, validate_options

#: The keys of the ``budget`` that `TrainEvaluator.evaluate` accepts.
BUDGET_KEYS = ("epochs", "fraction")
#: What scoring a network on the validation split gives (`score`): accuracy as a fraction, mean cross-entropy.
SCORED_FIGURES = (Figure("accuracy", Direction.MAX, Unit.FRACTION), Figure("loss", Direction.MIN, Unit.NATS))
#: Examples per forward pass when no gradients are kept (validation, BatchNorm recalibration).
_EVAL_BATCH = 1000
#: At most this many training examples re-estimate the BatchNorm statistics after training.
RECALIBRATION_EXAMPLES = 2000
#: A number in [0, 1).
Share = Annotated[float, Field(ge=0, lt=1)]


class TrainOptions(Options):
    """The options of the ``train`` evaluator (see `TrainEvaluator`)."""

    epochs: PositiveInt = 2
    fraction: Fraction = 1.0
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 0.05
    momentum: Share = 0.9
    weight_decay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 5e-4
    label_smoothing: Share = 0.0
    recalibrate_bn: bool = True
    init_weights: Annotated[FilePath, Field(strict=False)] | None = None


class TrainBudget(Options):
    """A budget of `TrainEvaluator.evaluate`. Schedulers give numbers as floats: 2.0 epochs are 2."""

    epochs: PositiveInt
    fraction: Fraction

    @field_validator("epochs", mode="before")
    @classmethod
    def _integral(cls, value: Any) -> Any:
        return int(value) if isinstance(value, float) and value.is_integer() else value


@dataclass(frozen=True)
class Fidelity:
    """How much training one evaluation gets: passes over the data and the share of the training split used."""

    epochs: int
    fraction: float

    def to_dict(self) -> dict[str, float]:
        return {"epochs": self.epochs, "fraction": self.fraction}


class _Diverged(Exception):
    """The training loss became NaN or infinite; the message says where."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def space_for_task(space: SearchSpace, data: TaskData, evaluator: str) -> NetworkSpace:
    """``space`` if it is a space of networks built for ``data``'s task; else an `InvalidOptionError` that says how
    to create one."""
    built = network_space(space, f"the {evaluator} evaluator")
    task = Task(data.input_shape, data.num_classes)
    if built.task != task:
        raise InvalidOptionError(
            f"space {built.name!r} is built for input_shape={built.input_shape}, num_classes={built.num_classes}; "
            f"dataset {data.name!r} has input_shape={task.input_shape}, num_classes={task.num_classes}: create the "
            "space for the dataset's task (a search does, when its space options give no input_shape or num_classes)"
        )
    return built


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor) -> None:
    """Replace the BatchNorm running statistics of ``model`` by their plain averages over the examples ``x``."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # an equally weighted average over the batches, which are of (nearly) equal sizes
    model.train()
    for batch in x.tensor_split(math.ceil(len(x) / _EVAL_BATCH)):
        model(batch)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


@torch.no_grad()
def score(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` on the examples ``x, y``."""
    model.eval()
    correct, loss = 0, 0.0
    for start in range(0, len(y), _EVAL_BATCH):
        logits = model(x[start : start + _EVAL_BATCH])
        loss += F.cross_entropy(logits, y[start : start + _EVAL_BATCH], reduction="sum").item()
        correct += int((logits.argmax(1) == y[start : start + _EVAL_BATCH]).sum())
    return correct / len(y), loss / len(y)


@register_evaluator("train")
class TrainEvaluator(ReadsDataset, Evaluator):
    """Trains each architecture from scratch and reports its validation accuracy.

    Metrics: ``accuracy`` (a fraction in [0, 1]) and ``loss`` (mean cross-entropy) on the validation split; the test
    split is never used. Costs: ``macs`` and ``params`` from ``space.cost``. Provenance: the fidelity (``epochs``,
    ``fraction``), the seed, the wall time and, in its details, the dataset (with its preprocessing and class names:
    a `nas.DataRecord`), the training and validation examples used, the threads, the last epoch's mean training loss
    and, in a run, the weights' path.

    A run whose training loss becomes NaN or infinite, an architecture outside the space, and an error raised by
    torch during training are failed results with the reason; the rest of the batch still evaluates.

    From its context: the space (a `NetworkSpace` built for the dataset's input shape and number of classes); the
    data (a dataset name, ``.npz`` file or image folder, split as its `evaluators.data.DataOptions` say: the
    validation examples do not depend on the seed); the seed (each architecture's run is seeded from it and its
    ``arch_id``); threads (torch intra-op threads while evaluating: more threads than free cores make every step
    wait for a descheduled thread, up to 15x slower on 2 cores); and, in a run, `EvaluatorContext.weights_dir`, where
    each trained network is saved as ``<arch_id>.pt`` (its ``state_dict``) next to ``<arch_id>.json`` (the
    architecture).

    Options (`TrainOptions`):
        epochs: default number of epochs (a positive integer).
        fraction: default share of the training split used, in (0, 1].
        batch_size: training examples per step; the last step of an epoch also takes the remainder.
        lr: peak learning rate of the cosine schedule.
        momentum: SGD momentum (Nesterov when positive), in [0, 1).
        weight_decay: L2 penalty applied by SGD, at least 0.
        label_smoothing: of the training loss, in [0, 1); the validation loss is plain cross-entropy.
        recalibrate_bn: after training, re-estimate the BatchNorm running statistics as plain averages over (up to
            `RECALIBRATION_EXAMPLES` of) the training examples used: after a short training the running averages lag
            far behind the weights, which makes validation accuracy noisy.
        init_weights: a ``state_dict`` file the network starts from instead of a fresh initialization (fine-tuning
            inherited or trained weights); it must fit every architecture evaluated.

    Example:
        >>> context = nas.create_context("train", "resnet20-pooling", "digits")  # doctest: +SKIP
        >>> evaluator = nas.create_evaluator("train", context, epochs=1)  # doctest: +SKIP
        >>> (result,) = evaluator.evaluate([context.space.sample(0)], budget={"fraction": 0.5})  # doctest: +SKIP
        >>> result.metrics["accuracy"], result.provenance.details["train_examples"]  # doctest: +SKIP
        (0.827..., 540)
    """

    Options = TrainOptions
    expensive: ClassVar[bool] = True

    def __init__(self, context: EvaluatorContext, options: TrainOptions | None = None) -> None:
        options = TrainOptions() if options is None else options
        self.data = load_data(context.data)
        self.space = space_for_task(context.space, self.data, self.name)
        self.options = options
        self.seed, self.threads = context.seed, context.threads
        self.keep_weights = context.weights_dir
        if self.keep_weights is not None and self.keep_weights.is_file():
            raise InvalidOptionError(f"the train evaluator keeps weights in {self.keep_weights}, which is a file")
        self._train_x, self._train_y = torch.from_numpy(self.data.train.x), torch.from_numpy(self.data.train.y)
        self._val_x, self._val_y = torch.from_numpy(self.data.val.x), torch.from_numpy(self.data.val.y)
        self.fidelity = self._fidelity({"epochs": options.epochs, "fraction": options.fraction}, "options")

    def figures(self) -> tuple[Figure, ...]:
        return (*SCORED_FIGURES, *self.space.figures())

    def evaluate(self, archs: Sequence[Architecture], budget: Mapping[str, float] | None = None) -> list[EvalResult]:
        """Train and score each architecture, in order.

        Args:
            archs: the architectures of `space` to evaluate.
            budget: overrides of the default fidelity, with the keys of `BUDGET_KEYS`: ``epochs`` (a positive
                integer) and ``fraction`` (in (0, 1]); e.g. ``{"epochs": 2, "fraction": 0.5}``.

        Raises:
            InvalidOptionError: for an unknown budget key or a value out of range (before anything is trained).
        """
        fidelity = self._fidelity({**self.fidelity.to_dict(), **(budget or {})}, "budget")
        with torch_threads(self.threads):
            return [self._evaluate_one(arch, fidelity) for arch in archs]

    def fidelity_steps(self) -> list[dict[str, float]]:
        """Epochs 1, 2, 4, ... up to the configured epochs, at the configured fraction; each step trains from scratch,
        since the learning-rate schedule depends on the number of epochs."""
        epochs = sorted({min(2**k, self.fidelity.epochs) for k in range(self.fidelity.epochs.bit_length() + 1)})
        return [{"epochs": e, "fraction": self.fidelity.fraction} for e in epochs]

    def _fidelity(self, given: Mapping[str, Any], what: str) -> Fidelity:
        """The fidelity ``given`` says, checked; ``what`` names its origin in errors."""
        budget = validate_options(TrainBudget, given, f"{what} of evaluator {self.name!r}")
        fidelity = Fidelity(budget.epochs, budget.fraction)
        used = self._train_examples(fidelity)
        if used < 2:
            raise InvalidOptionError(
                f"{what} of evaluator {self.name!r}: fraction={budget.fraction!r} leaves {used} of the "
                f"{len(self._train_y)} training examples; at least 2 are needed"
            )
        return fidelity

    def _train_examples(self, fidelity: Fidelity) -> int:
        return max(1, round(fidelity.fraction * len(self._train_y)))

    def arch_seed(self, arch: Architecture) -> int:
        """The seed of ``arch``'s run, derived from the evaluator's seed and the architecture's id."""
        digest = hashlib.sha256(f"{self.seed}/{arch.arch_id}".encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1  # fits torch's signed 64-bit seeds

    def _evaluate_one(self, arch: Architecture, fidelity: Fidelity) -> EvalResult:
        start = time.perf_counter()
        n = self._train_examples(fidelity)
        details: dict[str, Any] = {
            **self.data.record.details(),
            "train_examples": n,
            "val_examples": len(self._val_y),
            "threads": self.threads,
        }

        def provenance() -> Provenance:
            return Provenance(self.name, fidelity.to_dict(), self.seed, time.perf_counter() - start, details)

        try:
            cost = self.space.cost(arch)  # validates the architecture first
        except InvalidArchitectureError as error:
            return EvalResult.failed(arch, str(error), provenance())
        seed = self.arch_seed(arch)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)  # weight initialization (and any dropout)
                model = self.space.build(arch)
                if self.options.init_weights is not None:
                    model.load_state_dict(torch.load(self.options.init_weights, weights_only=True))
                    details["init_weights"] = str(self.options.init_weights)
                shuffle = torch.Generator().manual_seed(seed ^ 0x5EED)
                details["final_train_loss"] = self._train(model, n, fidelity.epochs, shuffle)
                if self.options.recalibrate_bn:
                    recalibrate_batchnorm(model, self._train_x[: min(n, RECALIBRATION_EXAMPLES)])
            accuracy, loss = score(model, self._val_x, self._val_y)
        except _Diverged as error:
            return EvalResult.failed(arch, str(error), provenance())
        except (RuntimeError, ValueError) as error:  # e.g. out of memory: this architecture fails, the batch goes on
            return EvalResult.failed(arch, f"training raised {type(error).__name__}: {error}", provenance())
        if not math.isfinite(loss):
            return EvalResult.failed(arch, f"validation loss is {loss} after training", provenance())
        if self.keep_weights is not None:
            try:
                details["weights"] = str(self._save(model, arch))
            except OSError as error:  # the file system's fault, not the architecture's: a resume tries again
                reason = f"saving the weights to {self.keep_weights} failed: {error}"
                return EvalResult.failed(arch, reason, provenance(), retryable=True)
        return EvalResult(arch, {"accuracy": accuracy, "loss": loss}, cost.to_dict(), provenance())

    def _train(self, model: nn.Module, n: int, epochs: int, shuffle: torch.Generator) -> float:
        """Train ``model`` on the first ``n`` training examples; the last epoch's mean training loss."""
        x, y = self._train_x[:n], self._train_y[:n]
        options, size = self.options, self.options.batch_size
        steps = max(1, n // size)  # the last step takes the remainder: no example is dropped
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=options.lr,
            momentum=options.momentum,
            weight_decay=options.weight_decay,
            nesterov=options.momentum > 0,
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps * epochs)
        model.train()
        total = 0.0
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=shuffle)
            total = 0.0
            for step in range(steps):
                batch = order[step * size : (step + 1) * size if step < steps - 1 else n]
                loss = F.cross_entropy(model(x[batch]), y[batch], label_smoothing=options.label_smoothing)
                value = loss.item()
                if not math.isfinite(value):
                    raise _Diverged(
                        f"training diverged: the loss became {value} at epoch {epoch} of {epochs}, step {step + 1} "
                        f"of {steps} (lr={options.lr})"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += value * len(batch)
        return total / n

    def _save(self, model: nn.Module, arch: Architecture) -> Path:
        """Write ``<arch_id>.pt`` (the state_dict, atomically) and ``<arch_id>.json`` (the folder is created on the
        first save, so that creating an evaluator writes nothing); the weights' path."""
        assert self.keep_weights is not None
        self.keep_weights.mkdir(parents=True, exist_ok=True)
        path = self.keep_weights / f"{arch.arch_id}.pt"
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(model.state_dict(), partial)
        os.replace(partial, path)
        path.with_suffix(".json").write_text(arch.to_json() + "\n")
        return path
