"""Training supernets: single-path uniform sampling (SPOS), the sandwich rule with in-place distillation (BigNAS), and
a balanced mixture of supernets for pooling configurations; complexity-aware sampling (ElasticViT) as an option.

One function, `train_supernets`, serves in-process and data-parallel training: every worker draws the same subnets
from the same seed and takes its share of each batch, and a ``sync`` hook averages the gradients (and the losses a
mixture learns from) across workers before each step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, get_args

import numpy as np
import torch
from pydantic import Field
from torch.nn import functional as F

from evaluators.supernet._mixture import BalancedAssignment
from evaluators.supernet._networks import Supernet
from nas import Architecture, Options
from nas.core.options import NonNegativeInt, PositiveFloat, PositiveInt, Seed

Variant = Literal["spos", "sandwich", "mixture"]
Sampling = Literal["uniform", "complexity"]
VARIANTS: tuple[str, ...] = get_args(Variant)
SAMPLINGS: tuple[str, ...] = get_args(Sampling)
#: Complexity bins of complexity-aware sampling, and the draws it makes to hit the chosen bin.
_BINS, _DRAWS = 8, 64

#: Averages a tensor across data-parallel workers, in place.
Sync = Callable[[torch.Tensor], None]


class Diverged(Exception):
    """The training loss became NaN or infinite."""


class TrainingPlan(Options):
    """How a supernet is trained (without the seed, which comes from the evaluator's context); `VARIANTS` name the
    methods.

    Attributes:
        epochs: the training budget in subnet passes over the training examples: a step that trains ``n`` subnets
            on a batch counts ``n`` batches, so every variant costs about the same for the same ``epochs``.
        sandwich_random: random subnets per sandwich step, besides the largest and the smallest.
        supernets: supernets in a mixture.
        mixture_temperature: how sharply a mixture's assignment follows the losses (lower: sharper).
        sampling: "uniform" over the space's choices, or "complexity": first a complexity bin uniformly, then an
            architecture in it, so that small and large subnets train equally often.
        kernel_transform, share_widths: options of the supernet (see `MacroCNNSupernet`,
            `ResNet20PoolingSupernet`).
    """

    variant: Variant = "sandwich"
    epochs: PositiveFloat = 12.0
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 0.05
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    weight_decay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 5e-4
    sandwich_random: NonNegativeInt = 2
    supernets: PositiveInt = 2
    mixture_temperature: PositiveFloat = 0.05
    sampling: Sampling = "uniform"
    kernel_transform: bool = False
    share_widths: bool = True


class SupernetTraining(TrainingPlan):
    """A `TrainingPlan` with its seed: everything a supernet's training depends on besides the space and data."""

    seed: Seed = 0

    @property
    def subnets_per_step(self) -> int:
        return 2 + self.sandwich_random if self.variant == "sandwich" else 1

    @property
    def mixture_size(self) -> int:
        """Supernets trained: ``supernets`` for a mixture, else one."""
        return self.supernets if self.variant == "mixture" else 1

    def steps(self, examples: int) -> int:
        """Optimizer steps for ``examples`` training examples."""
        return max(1, math.ceil(self.epochs * examples / (self.batch_size * self.subnets_per_step)))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class ArchSampler:
    """Draws the subnets to train: uniformly over the choices, or complexity-aware (a bin of MACs, or of parameters
    where every architecture has the same MACs, drawn uniformly, then an architecture in it)."""

    def __init__(self, supernet: Supernet, sampling: str, rng: np.random.Generator) -> None:
        self.space, self.sampling, self.rng = supernet.space, sampling, rng
        self.largest, self.smallest = supernet.extremes()
        if sampling == "complexity":
            low, high = (self.space.cost(a) for a in (self.smallest, self.largest))
            self._measure = "macs" if high.macs != low.macs else "params"
            self._range = (getattr(low, self._measure), getattr(high, self._measure))

    def __call__(self) -> Architecture:
        if self.sampling == "uniform":
            return self.space.sample(self.rng)
        low, high = self._range
        target = int(self.rng.integers(_BINS))
        best, distance = None, math.inf
        for _ in range(_DRAWS):  # rejection sampling; the nearest draw when the bin is rare
            arch = self.space.sample(self.rng)
            value = getattr(self.space.cost(arch), self._measure)
            found = min(_BINS - 1, int((value - low) / max(high - low, 1) * _BINS))
            if found == target:
                return arch
            if abs(found - target) < distance:
                best, distance = arch, abs(found - target)
        return best  # type: ignore[return-value]


def train_supernets(
    nets: Sequence[Supernet],
    x: torch.Tensor,
    y: torch.Tensor,
    plan: SupernetTraining,
    assignment: BalancedAssignment | None = None,
    sync: Sync | None = None,
    shard: tuple[int, int] = (0, 1),
) -> float:
    """Train ``nets`` (one supernet, or a mixture's with its ``assignment``) on ``x, y``; the mean loss of the last
    100 steps.

    Args:
        sync: averages gradients and losses across data-parallel workers (``None``: one worker).
        shard: (this worker's rank, workers): the worker trains on every ``workers``-th example of each batch.

    Raises:
        Diverged: the loss became NaN or infinite.
    """
    rank, world = shard
    rng = np.random.default_rng(plan.seed)  # the same on every worker, so all train the same subnets
    order_rng = torch.Generator().manual_seed(plan.seed ^ 0x5EED)
    sampler = ArchSampler(nets[0], plan.sampling, rng)
    params = [p for net in nets for p in net.parameters()]
    optimizer = torch.optim.SGD(
        params, lr=plan.lr, momentum=plan.momentum, weight_decay=plan.weight_decay, nesterov=plan.momentum > 0
    )
    steps, n = plan.steps(len(y)), len(y)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    for net in nets:
        net.train()
    order, position, recent = torch.randperm(n, generator=order_rng), 0, list[float]()
    for step in range(steps):
        if position + plan.batch_size > n:
            order, position = torch.randperm(n, generator=order_rng), 0
        batch = order[position : position + plan.batch_size][rank::world]
        position += plan.batch_size
        optimizer.zero_grad(set_to_none=True)
        loss = _step(nets, x[batch], y[batch], plan, sampler, assignment, sync)
        if not math.isfinite(loss):
            raise Diverged(f"supernet training diverged: the loss became {loss} at step {step + 1} of {steps}")
        if sync is not None:
            for p in params:
                if p.grad is not None:  # the same parameters on every worker: they trained the same subnets
                    sync(p.grad)
        optimizer.step()
        schedule.step()
        recent = [*recent[-99:], loss]
    return float(np.mean(recent))


def _step(
    nets: Sequence[Supernet],
    x: torch.Tensor,
    y: torch.Tensor,
    plan: SupernetTraining,
    sampler: ArchSampler,
    assignment: BalancedAssignment | None,
    sync: Sync | None,
) -> float:
    """Forward and backward passes of one step (gradients accumulate); the step's mean loss over its subnets and
    the workers."""
    if plan.variant == "sandwich":
        net = nets[0]
        teacher = net(x, sampler.largest)
        loss = F.cross_entropy(teacher, y)
        loss.backward()
        soft = teacher.detach().softmax(1)  # in-place distillation: the largest subnet teaches the others
        total = loss.detach() / plan.subnets_per_step
        for arch in [sampler.smallest, *(sampler() for _ in range(plan.sandwich_random))]:
            distilled = F.cross_entropy(net(x, arch), soft)
            distilled.backward()
            total = total + distilled.detach() / plan.subnets_per_step
    else:
        arch, k = sampler(), 0
        if assignment is not None:  # the configuration's member of the mixture trains it
            configuration = nets[0].configuration(arch)
            k = assignment.choose(configuration, sampler.rng)
        total = F.cross_entropy(nets[k](x, arch), y)
        total.backward()
        total = total.detach()
    if sync is not None:
        sync(total)
    if assignment is not None:
        assignment.observe(configuration, k, float(total))
    return float(total)
