"""Zero-cost proxies: scores of an untrained network that rank architectures without training them.

Each proxy is a function ``(model, batch) -> float`` (higher is better), registered by name in `PROXIES`:

- ``synflow`` (Tanaka et al. 2020, as a NAS proxy by Abdelfattah et al. 2021): the network in double precision,
  BatchNorm layers removed and every parameter replaced by its absolute value, is run on one all-ones input of the
  batch's shape; the score is the sum over the weights of convolution and linear layers of ``|w * dR/dw|``, with
  ``R`` the sum of the outputs. Data-free: only the batch's shape is used. Reported as its natural logarithm
  (``-inf`` when the sum is 0), as NAS-Bench-Suite-Zero publishes it; the ranking is the same.
- ``snip`` (Lee et al. 2019): the sum of ``|w * dL/dw|`` over the weights of convolution and linear layers, ``L``
  the cross-entropy of the batch.
- ``grad_norm``: the sum over those layers of the Euclidean norm of ``dL/dw``.
- ``jacov`` (Mellor et al. 2020, first version): with ``J`` the gradients of the summed outputs with respect to each
  input example, ``-sum(log(v + k) + 1 / (v + k))`` over the eigenvalues ``v`` of the correlation matrix of the
  examples' ``J``, ``k = 1e-5``; ``-inf`` when an example's ``J`` is constant (the output ignores the input).
- ``nwot`` (NASWOT, Mellor et al. 2021): the log-determinant of the kernel ``K[i, j]`` = number of ReLU units
  (inputs of every ``nn.ReLU`` / ``nn.ReLU6`` module) on which examples i and j have the same binary code
  (positive or not).

These follow the reference code of Abdelfattah et al. ("Zero-Cost Proxies for Lightweight NAS") as NASLib runs it:
the data-dependent proxies use the network in training mode (BatchNorm normalizes with the batch's statistics).
`score_proxies` computes several at once and shares their passes: one forward pass serves snip, grad_norm, jacov and
nwot. Every function works on a copy of the model, so the model, its gradients and its mode are left as they were;
no proxy draws random numbers.

The baselines ``params`` and ``macs`` are no functions of the model: the `ZeroCostEvaluator` takes them from the
space's analytic cost.

Example:
    >>> context = nas.create_context("zero-cost", "macro-cnn", "digits")  # doctest: +SKIP
    >>> evaluator = nas.create_evaluator("zero-cost", context)  # doctest: +SKIP
    >>> evaluator.evaluate([context.space.sample(0)])[0].metrics  # doctest: +SKIP
    {'synflow': 8.63..., 'snip': 98.02..., 'grad_norm': 39.75..., 'jacov': -60.01..., 'nwot': 300.46..., ...}
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import AfterValidator, BeforeValidator, Field
from torch import nn
from torch.nn import functional as F

from evaluators.data import ReadsDataset, load_data
from nas import (
    Architecture,
    Direction,
    EvalResult,
    Evaluator,
    EvaluatorContext,
    Figure,
    InvalidArchitectureError,
    InvalidOptionError,
    NASError,
    NetworkSpace,
    Options,
    Provenance,
    network_space,
    register_evaluator,
)

#: A minibatch: inputs (N, C, H, W) and integer class labels (N,).
Batch = tuple[torch.Tensor, torch.Tensor]
#: A zero-cost proxy: a score of an untrained network on a minibatch, higher meaning better.
ProxyFn = Callable[[nn.Module, Batch], float]

#: Added to the eigenvalues in ``jacov`` (the reference code's constant).
JACOV_K = 1e-5
#: The modules whose input codes ``nwot`` counts.
RELU_TYPES = (nn.ReLU, nn.ReLU6)
#: The layers whose weights synflow, snip and grad_norm sum over (the reference code's "prunable" layers).
WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)
_DATA_PROXIES = ("snip", "grad_norm", "jacov", "nwot")


# -- the proxies -----------------------------------------------------------------------------------------------------
def synflow(model: nn.Module, batch: Batch) -> float:
    """Log of the synaptic flow of ``model`` on an all-ones input shaped like one example of ``batch`` (data-free)."""
    net = _without_batchnorm(_copy(model)).double()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    ones = torch.ones((1, *batch[0].shape[1:]), dtype=torch.float64, device=_device(net))
    weights = _weights(net)
    grads = _grads(net(ones).sum(), weights)
    with torch.no_grad():
        total = sum(float((w * g).abs().sum()) for w, g in zip(weights, grads, strict=True))
    return math.log(total) if total > 0 else -math.inf


def snip(model: nn.Module, batch: Batch) -> float:
    """Connection sensitivity: the sum of ``|w * dL/dw|`` for the cross-entropy ``L`` of ``batch``."""
    return _data_scores(model, batch, ("snip",))["snip"]


def grad_norm(model: nn.Module, batch: Batch) -> float:
    """The sum over convolution and linear layers of the norm of their weights' cross-entropy gradient."""
    return _data_scores(model, batch, ("grad_norm",))["grad_norm"]


def jacov(model: nn.Module, batch: Batch) -> float:
    """Jacobian covariance: high when the examples' input gradients are uncorrelated."""
    return _data_scores(model, batch, ("jacov",))["jacov"]


def nwot(model: nn.Module, batch: Batch) -> float:
    """NASWOT: log-determinant of the kernel of agreements between the examples' binary ReLU codes."""
    return _data_scores(model, batch, ("nwot",))["nwot"]


#: The registry of proxies computed from the network: name -> function.
PROXIES: Mapping[str, ProxyFn] = MappingProxyType(
    {"synflow": synflow, "snip": snip, "grad_norm": grad_norm, "jacov": jacov, "nwot": nwot}
)
#: The baselines taken from the space's analytic cost.
COST_PROXIES = ("params", "macs")
#: Every name `ZeroCostEvaluator` accepts, in report order.
PROXY_NAMES = (*PROXIES, *COST_PROXIES)
#: The proxies that do not look at the data (synflow uses only the input shape).
DATA_FREE = ("synflow", *COST_PROXIES)


def score_proxies(model: nn.Module, batch: Batch, names: Sequence[str] | None = None) -> dict[str, float]:
    """Several proxies of `PROXIES` at once (default all), equal to calling each function, sharing their passes."""
    chosen = check_proxies(names, tuple(PROXIES))
    shared = [name for name in chosen if name in _DATA_PROXIES]
    scores = _data_scores(model, batch, shared) if shared else {}
    for name in chosen:
        if name not in scores:
            scores[name] = PROXIES[name](model, batch)
    return {name: scores[name] for name in chosen}


def check_proxies(names: str | Sequence[str] | None, accepted: Sequence[str] = PROXY_NAMES) -> tuple[str, ...]:
    """``names`` as a tuple (one name or several; ``None`` means all of ``accepted``); unknown or repeated names are
    an `InvalidOptionError` that lists the accepted ones."""
    chosen = tuple(accepted) if names is None else (names,) if isinstance(names, str) else tuple(names)
    unknown = [n for n in chosen if n not in accepted]
    if unknown or not chosen or len(set(chosen)) < len(chosen):
        problem = f"unknown proxies {', '.join(map(repr, unknown))}" if unknown else f"proxies {list(chosen)}"
        raise InvalidOptionError(f"{problem}: give one or more distinct names of {', '.join(accepted)}")
    return chosen


# -- shared passes ---------------------------------------------------------------------------------------------------
def _data_scores(model: nn.Module, batch: Batch, names: Sequence[str]) -> dict[str, float]:
    """snip, grad_norm, jacov and nwot (those in ``names``) from one forward pass of a copy in training mode."""
    net = _copy(model).train()
    inputs, targets = batch
    if len(inputs) < 2 or len(targets) != len(inputs):
        raise InvalidOptionError(
            f"a proxy batch needs at least 2 examples and one label per example; got {len(inputs)} inputs and "
            f"{len(targets)} labels"
        )
    device = _device(net)
    x = inputs.detach().to(device, torch.float32).clone().requires_grad_("jacov" in names)
    kernel = _CodeKernel(net, len(x)) if "nwot" in names else None
    try:
        out = net(x)
    finally:
        if kernel is not None:
            kernel.remove()
    scores: dict[str, float] = {}
    if "snip" in names or "grad_norm" in names:
        weights = _weights(net)
        loss = F.cross_entropy(out, targets.to(device))
        grads = _grads(loss, weights, retain_graph="jacov" in names)
        with torch.no_grad():
            if "snip" in names:
                scores["snip"] = sum(float((w * g).abs().sum()) for w, g in zip(weights, grads, strict=True))
            if "grad_norm" in names:
                scores["grad_norm"] = sum(float(g.norm()) for g in grads)
    if "jacov" in names:
        (jacobian,) = _grads(out.sum(), [x])
        scores["jacov"] = _jacov_score(jacobian.reshape(len(x), -1).double().cpu().numpy())
    if kernel is not None:
        scores["nwot"] = float(np.linalg.slogdet(kernel.matrix)[1])
    return scores


def _jacov_score(jacobians: np.ndarray) -> float:
    if np.any(np.ptp(jacobians, axis=1) == 0):
        return -math.inf  # an example's input gradient is constant: its correlations are undefined
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(jacobians))
    return float(-np.sum(np.log(eigenvalues + JACOV_K) + 1.0 / (eigenvalues + JACOV_K)))


class _CodeKernel:
    """Forward hooks on the ReLU modules that add up the agreements of the examples' binary codes (NASWOT's K)."""

    def __init__(self, net: nn.Module, n: int) -> None:
        self.matrix = np.zeros((n, n))
        relus = [m for m in net.modules() if isinstance(m, RELU_TYPES)]
        if not relus:
            raise InvalidOptionError(
                f"nwot counts the codes of nn.ReLU / nn.ReLU6 modules and {type(net).__name__} has none"
            )
        self._handles = [m.register_forward_hook(self._hook) for m in relus]

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        with torch.no_grad():
            signs = (inputs[0].reshape(len(inputs[0]), -1) > 0).float() * 2.0 - 1.0
            # agreements - disagreements = signs @ signs.T, and their sum is the number of units; integers below
            # 2**24 are exact in float32
            agree = (signs @ signs.T + signs.shape[1]) / 2.0
        self.matrix += agree.double().cpu().numpy()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _copy(model: nn.Module) -> nn.Module:
    net = copy.deepcopy(model)
    for parameter in net.parameters():
        parameter.requires_grad_(True)
    return net


def _without_batchnorm(net: nn.Module) -> nn.Module:
    """``net`` with every BatchNorm module replaced by the identity (in place)."""
    for name, module in list(net.named_modules()):
        if name and isinstance(module, nn.modules.batchnorm._BatchNorm):
            parent, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent), child, nn.Identity())
    return net


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, WEIGHT_LAYERS)]


def _grads(output: torch.Tensor, tensors: Sequence[torch.Tensor], retain_graph: bool = False) -> list[torch.Tensor]:
    """Gradients of ``output``; zeros for a tensor it does not depend on (a layer cut off by a ``none`` edge)."""
    grads = torch.autograd.grad(output, list(tensors), retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, grads, strict=True)]


def _device(net: nn.Module) -> torch.device:
    return next((p.device for p in net.parameters()), torch.device("cpu"))


# -- the evaluator ---------------------------------------------------------------------------------------------------
class ZeroCostOptions(Options):
    """The options of the ``zero-cost`` evaluator (see `ZeroCostEvaluator`)."""

    proxies: Annotated[
        tuple[str, ...],
        BeforeValidator(lambda names: (names,) if isinstance(names, str) else names),
        AfterValidator(check_proxies),
        Field(strict=False),
    ] = PROXY_NAMES
    batch_size: Annotated[int, Field(ge=2)] = 32
    fit_input: bool = False


@register_evaluator("zero-cost")
class ZeroCostEvaluator(ReadsDataset, Evaluator):
    """Scores each architecture with zero-cost proxies on one minibatch of real data: no training.

    Every network is initialized from the same seed (so a score depends only on the architecture, the seed and the
    data) and scored on the same minibatch: ``batch_size`` examples of the dataset's training split, drawn with the
    seed. Metrics: one value per chosen proxy (see the module docstring; ``params`` and ``macs`` repeat the costs).
    Costs: ``macs`` and ``params`` from ``space.cost``. Provenance: the seed, the wall time and, in its details, the
    proxies, the dataset, the split, the batch size and the input shape (with how it was fitted, if it was).

    An architecture outside the space, and an error raised while scoring one, are failed results with the reason;
    the rest of the batch still evaluates. The global torch RNG state and thread count are left as they were.

    From its context: the space (a `NetworkSpace`), the data (a dataset name, ``.npz`` file or image folder; see
    `evaluators.data.load_data`) and the seed (of the weight initialization and the draw of the minibatch).

    Options (`ZeroCostOptions`):
        proxies: names of `PROXY_NAMES` (one or several); all by default.
        batch_size: examples in the minibatch, at least 2.
        fit_input: when the data's images are not of the space's input shape, resize them (bilinear, antialiased)
            to its height and width and repeat a single channel to its channels, instead of refusing them. For
            scoring a space built for data that is not at hand, e.g. NAS-Bench-201's CIFAR network on Fashion-MNIST.

    Example:
        >>> context = nas.create_context("zero-cost", "macro-cnn", "digits")  # doctest: +SKIP
        >>> zc = nas.create_evaluator("zero-cost", context, proxies=["synflow", "nwot"])  # doctest: +SKIP
        >>> zc.evaluate([context.space.sample(0)])[0].metrics  # doctest: +SKIP
        {'synflow': 8.63..., 'nwot': 300.46...}
    """

    Options = ZeroCostOptions

    def __init__(self, context: EvaluatorContext, options: ZeroCostOptions | None = None) -> None:
        options = ZeroCostOptions() if options is None else options
        self.proxies, batch_size, self.seed = options.proxies, options.batch_size, context.seed
        data = load_data(context.data)
        space = network_space(context.space, "the zero-cost evaluator")
        if data.num_classes > space.num_classes:
            raise InvalidOptionError(
                f"dataset {data.name!r} has {data.num_classes} classes but space {space.name!r} is built for "
                f"{space.num_classes}: create the space with num_classes >= {data.num_classes}"
            )
        if len(data.train) < batch_size:
            raise InvalidOptionError(
                f"evaluator 'zero-cost': batch_size={batch_size} exceeds the {len(data.train)} training examples of "
                f"{data.name!r}"
            )
        x, y = next(iter(data.loader("train", batch_size, shuffle=True, seed=self.seed)))
        self.space = space
        self.batch_size = batch_size
        self.batch: Batch = (self._fit(x, data.name, data.input_shape, space, options.fit_input), y)
        shape = "x".join(map(str, data.input_shape))
        self.data_details: dict[str, Any] = {
            "dataset": data.name,
            "split": "train",
            "batch_size": batch_size,
            "input": shape
            if data.input_shape == space.input_shape
            else f"{shape} resized to {'x'.join(map(str, space.input_shape))}"
            + (" (channel repeated)" if data.input_shape[0] != space.input_shape[0] else ""),
        }

    @staticmethod
    def _fit(
        x: torch.Tensor, name: str, shape: tuple[int, int, int], space: NetworkSpace, fit_input: bool
    ) -> torch.Tensor:
        """The batch in the space's input shape; an `InvalidOptionError` when it is not and may not be fitted."""
        if shape == space.input_shape:
            return x
        wanted = space.input_shape
        if not fit_input:
            raise InvalidOptionError(
                f"dataset {name!r} has input shape {shape} but space {space.name!r} is built for {wanted}: create the "
                "space for the dataset's input shape, or give the option fit_input=True to resize the images"
            )
        if shape[0] not in (1, wanted[0]):
            raise InvalidOptionError(
                f"fit_input cannot map the {shape[0]} channels of dataset {name!r} to the {wanted[0]} of space "
                f"{space.name!r}; only one channel (repeated) or the same number can be fitted"
            )
        resized = F.interpolate(x, size=wanted[1:], mode="bilinear", align_corners=False, antialias=True)
        return resized.expand(-1, wanted[0], -1, -1).contiguous()

    def figures(self) -> tuple[Figure, ...]:
        """Each scoring proxy (higher is better) and the space's costs (``params`` and ``macs`` as baselines too)."""
        return (*(Figure(p, Direction.MAX) for p in self.proxies if p in PROXIES), *self.space.figures())

    def evaluate(self, archs: Sequence[Architecture], budget: Mapping[str, float] | None = None) -> list[EvalResult]:
        """Score each architecture, in order. ``budget`` is ignored: nothing is trained."""
        return [self._evaluate_one(arch) for arch in archs]

    def _evaluate_one(self, arch: Architecture) -> EvalResult:
        start = time.perf_counter()
        details = {"proxies": list(self.proxies), **self.data_details}

        def provenance() -> Provenance:
            return Provenance(self.name, {}, self.seed, time.perf_counter() - start, details)

        try:
            cost = self.space.cost(arch)  # validates the architecture first
        except InvalidArchitectureError as error:
            return EvalResult.failed(arch, str(error), provenance())
        costs = cost.to_dict()
        metrics: dict[str, float] = {name: float(costs[name]) for name in self.proxies if name in COST_PROXIES}
        names = [name for name in self.proxies if name in PROXIES]
        if names:
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.default_generator.manual_seed(self.seed)
                    model = self.space.build(arch)
                metrics.update(score_proxies(model, self.batch, names))
            except (RuntimeError, NASError) as error:
                return EvalResult.failed(arch, f"scoring raised {type(error).__name__}: {error}", provenance())
        return EvalResult(arch, {name: metrics[name] for name in self.proxies}, costs, provenance())
