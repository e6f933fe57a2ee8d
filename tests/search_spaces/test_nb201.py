"""nb201 against the benchmark itself: strings, isomorphism classes, published params and FLOPs, exact costs."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils import flop_counter

import nas
from search_spaces.nb201 import OPS

# NASLib's op ids and edge order in the published zero-cost file (see its SOURCE.md).
NASLIB_OPS = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]
PUBLISHED = {"cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100), "ImageNet16-120": ((3, 16, 16), 120)}


@pytest.fixture(scope="module")
def space():
    return nas.create_space("nb201", input_shape=(3, 32, 32), num_classes=10)


@pytest.fixture(scope="module")
def table(data_dir):
    return pd.read_csv(data_dir / "nats_bench_tss_csv" / "nats_bench.csv")


def naslib_string(key: str) -> str:
    ops = [NASLIB_OPS[int(i)] for i in re.findall(r"\d", key)]  # edges 1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2
    return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[3]}~1|+|{ops[2]}~0|{ops[4]}~1|{ops[5]}~2|"


def test_strings_round_trip_over_the_whole_table(space, table):
    archs = [space.from_string(s) for s in table.ArchitectureString]
    assert [space.to_string(a) for a in archs] == list(table.ArchitectureString)
    assert len(set(archs)) == 15625 == space.size()
    assert set(archs) == set(space.enumerate())


def test_unique_string_reproduces_the_benchmark_column(space, table):
    keys = [space.unique_string(space.from_string(s)) for s in table.ArchitectureString]
    assert keys == list(table.UniqueString)


def test_canonical_classes_coincide_with_unique_string(space, table):
    canon = [space.canonical(space.from_string(s)) for s in table.ArchitectureString]
    assert len(set(canon)) == 6466
    pairs = pd.DataFrame({"ours": [a.arch_id for a in canon], "theirs": table.UniqueString})
    assert (pairs.groupby("ours").theirs.nunique() == 1).all()
    assert (pairs.groupby("theirs").ours.nunique() == 1).all()
    assert all(space.canonical(a) == a for a in set(canon))  # idempotent: a representative is its own


@pytest.mark.parametrize("dataset", sorted(PUBLISHED))
def test_params_and_flops_reproduce_the_published_figures(data_dir, dataset):
    shape, classes = PUBLISHED[dataset]
    space = nas.create_space("nb201", input_shape=shape, num_classes=classes)
    published = json.loads((data_dir / "naslib_zc_nb201_sample" / "zc_nasbench201.json").read_text())[dataset]
    assert len(published) >= 724
    for key, record in published.items():
        arch = space.from_string(naslib_string(key))
        assert space.cost(arch).params == round(record["params"]["score"] * 1e6), key
        assert space.published_flops(arch) == round(record["flops"]["score"] * 1e6), key


def test_published_flops_are_macs_plus_elementwise_terms(space):
    """All-skip cells add no per-element terms; a conv edge adds 3 per output element, a pool edge 9."""
    skip = space.from_string(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    conv = space.from_string(
        "|nor_conv_1x1~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    pool = space.from_string(
        "|avg_pool_3x3~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    elements = 5 * (16 * 32 * 32 + 32 * 16 * 16 + 64 * 8 * 8)  # one edge's output elements over the 15 cells
    base = space.published_flops(skip) - space.cost(skip).macs
    assert space.published_flops(conv) - space.cost(conv).macs == base + 3 * elements
    assert space.published_flops(pool) - space.cost(pool).macs == base + 9 * elements


def test_input_shape_must_halve_twice():
    with pytest.raises(nas.InvalidOptionError, match="divisible by 4.*30x30"):
        nas.create_space("nb201", input_shape=(3, 30, 30))
    assert nas.create_space("nb201", input_shape=(1, 8, 12)).cost  # any multiple of 4 works


def test_bad_string_names_the_format(space):
    with pytest.raises(nas.InvalidArchitectureError, match=r"expected \|op~0\|\+"):
        space.from_string("|conv~0|")
    with pytest.raises(nas.InvalidArchitectureError, match="edge_1_0='sep_conv' is not an option"):
        space.from_string("|sep_conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def module_cost(model: nn.Module, shape) -> tuple[int, int]:
    """MACs of conv and linear layers with FlopCounterMode's own formulas, counted in forward hooks (fast)."""
    macs = 0

    def count(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            macs += flop_counter.conv_flop_count(inputs[0].shape, module.weight.shape, output.shape) // 2
        else:
            macs += flop_counter.mm_flop(inputs[0].shape, module.weight.T.shape) // 2

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    return macs, sum(p.numel() for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(8))
def test_cost_equals_the_module_for_every_cell(chunk):
    torch.set_num_threads(1)
    space = nas.create_space("nb201", input_shape=(3, 32, 32), num_classes=10)
    cells = list(space.enumerate())[chunk::8]
    for arch in cells:
        cost = space.cost(arch)
        assert module_cost(space.build(arch), space.input_shape) == (cost.macs, cost.params), space.to_string(arch)


def test_hook_counter_agrees_with_flop_counter_mode(space):
    for arch in space.sample_many(3, 11):
        model = space.build(arch)
        with flop_counter.FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, 3, 32, 32))
        assert module_cost(model, (3, 32, 32))[0] == counter.get_total_flops() // 2


def test_ops_are_the_benchmark_ops():
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
