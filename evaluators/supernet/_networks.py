"""Supernets of the CNN spaces: the shared weights of every architecture, and its subnets as the space's own networks.

A subnet is never a separate implementation: `Supernet.forward` runs ``space.build(arch)`` (built once per
architecture on the meta device, so without weights) on views of the shared weights with `torch.func.functional_call`,
and `Supernet.extract` loads copies of the same tensors into a fresh ``space.build(arch)``. Training and extraction
therefore compute exactly the same function, and an extracted subnet is the plain static module a user exports.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

import torch
from torch import nn
from torch.func import functional_call

from evaluators.supernet._layers import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicLinear,
    Tensors,
    conv_bn_tensors,
    prefixed,
)
from nas import Architecture, InvalidOptionError, NetworkSpace
from search_spaces.macro_cnn import MacroCNNSpace, scaled_width, stage_dim
from search_spaces.resnet20_pooling import NUM_BLOCKS, POOLS, ResNet20PoolingSpace, projects

#: Spaces this small are searched exhaustively for their largest and smallest architectures.
_ENUMERABLE = 10_000
_SKELETONS = 256


class Supernet(nn.Module):
    """The weights shared by all architectures of ``space``.

    Subclasses create the dynamic layers and map an architecture to the state of its static network (`tensors`).
    """

    space_type: ClassVar[type[NetworkSpace]]

    def __init__(self, space: NetworkSpace) -> None:
        super().__init__()
        self.space = space
        self._skeletons: OrderedDict[str, nn.Module] = OrderedDict()  # not submodules: they hold no weights

    @abstractmethod
    def tensors(self, arch: Architecture) -> Tensors:
        """The ``state_dict`` of ``space.build(arch)``, as views of (or functions of) the shared weights."""

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        """The logits of subnet ``arch``: gradients reach the shared weights, BatchNorm updates shared statistics."""
        skeleton = self._skeleton(arch)
        skeleton.train(self.training)
        return functional_call(skeleton, self.tensors(arch), (x,), strict=True)

    def extract(self, arch: Architecture) -> nn.Module:
        """``space.build(arch)`` with copies of the inherited weights; the supernet is left untouched."""
        module = self.space.build(arch)
        with torch.no_grad():
            module.load_state_dict({name: t.detach().clone() for name, t in self.tensors(arch).items()})
        return module

    def extremes(self, complexity: Callable[[Architecture], Any] | None = None) -> tuple[Architecture, Architecture]:
        """The largest and the smallest architecture by ``complexity`` (default: MACs, then parameters)."""
        key = complexity or (lambda a: (self.space.cost(a).macs, self.space.cost(a).params))
        if self.space.size() <= _ENUMERABLE:
            archs = list(self.space.enumerate())
            return max(archs, key=key), min(archs, key=key)
        # Larger spaces here grow with every option (kernel, width, depth, expansion): take each dimension's extreme.
        dims = self.space.dimensions()
        return tuple(  # type: ignore[return-value]
            self.space.canonical(self.space.arch({d.name: pick(d.options) for d in dims}))  # type: ignore[type-var]
            for pick in (max, min)
        )

    def configurations(self) -> list[str] | None:
        """The configurations a mixture of supernets assigns to its members (None: this supernet has none)."""
        return None

    def configuration(self, arch: Architecture) -> str:
        """The configuration of ``arch`` among `configurations` (only where there are some)."""
        raise NotImplementedError(f"the supernet of {self.space.name} has no configurations")

    def _skeleton(self, arch: Architecture) -> nn.Module:
        skeleton = self._skeletons.pop(arch.arch_id, None)
        if skeleton is None:
            with torch.device("meta"):
                skeleton = self.space.build(arch)
        self._skeletons[arch.arch_id] = skeleton
        while len(self._skeletons) > _SKELETONS:
            self._skeletons.popitem(last=False)
        return skeleton


class ResNet20PoolingSupernet(Supernet):
    """ResNet-20 with every downsampling placement; pooling layers have no weights, a stride-2 block uses the same
    convolutions as a stride-1 one.

    Args:
        share_widths: block ``i`` holds one set of weights for every width it can have (up to
            ``base * 2**min(i + 1, num_downsample)``), a narrower block using a slice; False gives each (input,
            output) width pair of a block weights of its own, so that only configurations that give a block the same
            widths share its weights.

    `configurations` are the pooling configurations, the placements of the downsampling layers, for a mixture of
    supernets: architectures that differ only in their downsampling operations work at the same resolutions with
    the same widths, so they share one member.
    """

    space_type = ResNet20PoolingSpace

    def __init__(self, space: ResNet20PoolingSpace, share_widths: bool = True) -> None:
        super().__init__(space)
        base, most, channels = space.base_width, space.num_downsample, space.input_shape[0]
        self.share_widths = share_widths
        self.stem = DynamicConv2d(channels, base, 3)
        self.stem_bn = DynamicBatchNorm2d(base)
        self.blocks = nn.ModuleList()
        for i in range(NUM_BLOCKS):
            widths = [base * 2**k for k in range(min(i, most) + 1)]  # the input widths block i can have
            pairs = [(w, o) for w in widths for o in (w, 2 * w) if o <= base * 2 ** min(i + 1, most)]
            if share_widths:
                pairs = [(widths[-1], base * 2 ** min(i + 1, most))]
            self.blocks.append(nn.ModuleDict({_pair(*p): _basic_block_bank(*p) for p in pairs}))
        self.classifier = DynamicLinear(base * 2**most, space.num_classes)

    def tensors(self, arch: Architecture) -> Tensors:
        specs = self.space.blocks(arch)  # type: ignore[attr-defined]
        out = conv_bn_tensors("stem", self.stem, self.stem_bn, self.stem.max_in, self.stem.max_out, 3)
        for i, (spec, banks) in enumerate(zip(specs, self.blocks, strict=True)):
            choices = cast(dict[str, Any], banks)
            bank = next(iter(choices.values())) if self.share_widths else choices[_pair(spec.c_in, spec.c_out)]
            path = f"blocks.{i}.1" if spec.downsample in POOLS else f"blocks.{i}"
            out |= conv_bn_tensors(f"{path}.body.0", bank["conv1"], bank["bn1"], spec.c_in, spec.c_out, 3)
            out |= conv_bn_tensors(f"{path}.body.1", bank["conv2"], bank["bn2"], spec.c_out, spec.c_out, 3)
            if projects(spec.c_in, spec.c_out, spec.stride):
                out |= conv_bn_tensors(
                    f"{path}.shortcut", bank["shortcut"], bank["shortcut_bn"], spec.c_in, spec.c_out, 1
                )
        return out | prefixed("classifier", self.classifier.tensors(specs[-1].c_out))

    def configurations(self) -> list[str] | None:
        """The pooling configurations: every placement of the downsampling layers."""
        (placements,) = (d.options for d in self.space.dimensions() if d.name == "downsample_at")
        return [_placement(blocks) for blocks in placements]

    def configuration(self, arch: Architecture) -> str:
        return _placement(arch.choices["downsample_at"])


def _placement(blocks: Any) -> str:
    """The name of a placement (a tuple of block indices) of the downsampling layers."""
    return "downsample_at=" + ",".join(map(str, blocks))


def _pair(c_in: int, c_out: int) -> str:
    return f"{c_in}_{c_out}"


def _basic_block_bank(c_in: int, c_out: int) -> nn.ModuleDict:
    """The weights of a `BasicBlock` of up to ``c_in`` input and ``c_out`` output channels."""
    return nn.ModuleDict(
        {
            "conv1": DynamicConv2d(c_in, c_out, 3),
            "bn1": DynamicBatchNorm2d(c_out),
            "conv2": DynamicConv2d(c_out, c_out, 3),
            "bn2": DynamicBatchNorm2d(c_out),
            "shortcut": DynamicConv2d(c_in, c_out, 1),
            "shortcut_bn": DynamicBatchNorm2d(c_out),
        }
    )


class MacroCNNSupernet(Supernet):
    """Macro CNN with every width, depth, kernel and expansion: each block position of each stage holds the largest
    block it can be; a shallower stage skips its trailing blocks.

    Args:
        kernel_transform: Once-for-All's learned transformation of a kernel's centre into a smaller kernel.
    """

    space_type = MacroCNNSpace

    def __init__(self, space: MacroCNNSpace, kernel_transform: bool = False) -> None:
        super().__init__(space)
        kernel, expand = max(space.kernel_sizes), max(space.expand_ratios)
        self.stem = DynamicConv2d(space.input_shape[0], space.stem_width, 3)
        self.stem_bn = DynamicBatchNorm2d(space.stem_width)
        self.stages = nn.ModuleList()
        c_in = space.stem_width
        for base in space.base_widths:
            width = scaled_width(base, max(space.width_multipliers))
            stage = nn.ModuleList()
            for _ in range(max(space.depths)):
                if space.block == "conv":
                    bank = {"conv": DynamicConv2d(c_in, width, kernel, kernel_transform=kernel_transform)}
                    bank["bn"] = DynamicBatchNorm2d(width)  # type: ignore[assignment]
                else:
                    hidden = c_in * expand
                    bank = {
                        "expand": DynamicConv2d(c_in, hidden, 1),
                        "expand_bn": DynamicBatchNorm2d(hidden),  # type: ignore[dict-item]
                        "depthwise": DynamicConv2d(hidden, hidden, kernel, True, kernel_transform),
                        "depthwise_bn": DynamicBatchNorm2d(hidden),  # type: ignore[dict-item]
                        "project": DynamicConv2d(hidden, width, 1),
                        "project_bn": DynamicBatchNorm2d(width),  # type: ignore[dict-item]
                    }
                stage.append(nn.ModuleDict(bank))
                c_in = width
            self.stages.append(stage)
        self.classifier = DynamicLinear(c_in, space.num_classes)

    def tensors(self, arch: Architecture) -> Tensors:
        space: MacroCNNSpace = self.space  # type: ignore[assignment]
        specs = iter(space.blocks(arch))
        out = conv_bn_tensors("stem", self.stem, self.stem_bn, self.stem.max_in, self.stem.max_out, 3)
        index = 0
        for number, stage in enumerate(self.stages, 1):
            depth: int = arch.choices[stage_dim(number, "depth")]  # type: ignore[assignment]
            for bank in cast(list[dict[str, Any]], stage)[:depth]:
                spec, path = next(specs), f"blocks.{index}"
                if spec.expand is None:
                    out |= conv_bn_tensors(path, bank["conv"], bank["bn"], spec.c_in, spec.c_out, spec.kernel)
                else:
                    hidden, units = spec.c_in * spec.expand, []
                    if spec.expand != 1:
                        units.append(("expand", spec.c_in, hidden, 1))
                    units += [("depthwise", hidden, hidden, spec.kernel), ("project", hidden, spec.c_out, 1)]
                    for unit, (name, c_in, c_out, kernel) in enumerate(units):
                        out |= conv_bn_tensors(
                            f"{path}.body.{unit}", bank[name], bank[f"{name}_bn"], c_in, c_out, kernel
                        )
                index += 1
        return out | prefixed("classifier", self.classifier.tensors(spec.c_out))


SUPERNETS: dict[str, type[Supernet]] = {"resnet20-pooling": ResNet20PoolingSupernet, "macro-cnn": MacroCNNSupernet}


def create_supernet(space: NetworkSpace, **options: Any) -> Supernet:
    """The supernet of ``space`` (its weights freshly initialized from the current torch seed)."""
    supernet = SUPERNETS.get(space.name)
    if supernet is None or not isinstance(space, supernet.space_type):
        raise InvalidOptionError(
            f"there is no supernet for space {space.name!r}; supernets exist for {', '.join(sorted(SUPERNETS))}"
        )
    accepted = inspect.signature(supernet).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidOptionError(
            f"the supernet of {space.name} takes no {', '.join(unknown)}; it takes "
            f"{', '.join(p for p in accepted if p != 'space')}"
        )
    return supernet(space, **options)  # type: ignore[call-arg]


def mixture_configurations(supernet: Supernet) -> Sequence[str]:
    """The configurations a mixture of supernets assigns, or an error naming the supernets that have them."""
    configurations = supernet.configurations()
    if configurations is None:
        having = [name for name, cls in SUPERNETS.items() if cls.configurations is not Supernet.configurations]
        raise InvalidOptionError(
            f"a mixture of supernets assigns pooling configurations; space {supernet.space.name!r} has none. "
            f"Use it with {', '.join(having)}, or the spos or sandwich variant"
        )
    return configurations
