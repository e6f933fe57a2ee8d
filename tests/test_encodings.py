"""Architecture encodings: one-hot, cell adjacency, paths, path statistics, costs and proxies, on real spaces."""

from __future__ import annotations

import numpy as np
import pytest

import nas
from nas.core.encodings import Encoder, live_edges, paths


@pytest.fixture(scope="module")
def nb201():
    return nas.create_space("nb201")


def cell(space, ops):
    """An nb201 cell from its six operations in the benchmark string's order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""
    return space.from_string("|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops))


def test_one_hot_marks_one_option_per_dimension(nb201):
    archs = nb201.sample_many(20, 0)
    features = Encoder(nb201, "onehot", canonical=False)(archs)
    assert features.shape == (20, 30) and (features.sum(axis=1) == 6).all()


def test_paths_of_an_all_skip_cell(nb201):
    arch = cell(nb201, ["skip_connect"] * 6)
    found = sorted(paths(nb201.cell(arch)))
    assert found == [
        ("skip_connect",),
        ("skip_connect", "skip_connect"),
        ("skip_connect", "skip_connect"),
        ("skip_connect",) * 3,
    ]
    row = Encoder(nb201, "path", canonical=False)([arch])[0]
    assert row.shape == (4 + 16 + 64,) and row.sum() == 4 and row.max() == 2


def test_dead_edges_are_not_encoded(nb201):
    # node 2 is computed (conv from node 1) but never reaches the output: its edges carry no information
    arch = cell(nb201, ["nor_conv_3x3", "none", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none"])
    assert sorted(live_edges(nb201.cell(arch))) == [
        (0, 1, "nor_conv_3x3"),
        (0, 3, "skip_connect"),
        (1, 3, "nor_conv_1x1"),
    ]
    adjacency = Encoder(nb201, "adjacency", canonical=False)([arch])[0]
    assert adjacency.sum() == 3


def test_path_stats_tell_a_disconnected_cell(nb201):
    dead = cell(nb201, ["nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "none", "none", "none"])
    live = cell(nb201, ["nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "none", "none", "skip_connect"])
    stats = Encoder(nb201, "path-stats", canonical=False)([dead, live])
    assert stats[0, :4].tolist() == [0, 0, 0, 1]  # no path, no length, the "no path" flag
    assert stats[1, :4].tolist() == [2, 3, 2, 0]  # paths 0-2-3 and 0-1-2-3


def test_isomorphs_share_features_only_when_canonical(nb201):
    # the same function: the edge from node 1 is dead either way, whatever it carries
    a = cell(nb201, ["nor_conv_3x3", "skip_connect", "none", "nor_conv_1x1", "none", "nor_conv_3x3"])
    b = cell(nb201, ["avg_pool_3x3", "skip_connect", "none", "nor_conv_1x1", "none", "nor_conv_3x3"])
    assert nb201.canonical(a) == nb201.canonical(b)
    for encoding in ("onehot", "costs", "path-stats"):
        canonical = Encoder(nb201, encoding)([a, b])
        assert (canonical[0] == canonical[1]).all()
    raw = Encoder(nb201, "onehot", canonical=False)([a, b])
    assert (raw[0] != raw[1]).any()


def test_costs_are_standardized_logs(nb201):
    features = Encoder(nb201, "costs")(nb201.sample_many(300, 1))
    assert features.shape == (300, 2)
    assert np.abs(features.mean(axis=0)).max() < 0.3 and np.abs(features.std(axis=0) - 1).max() < 0.3


def test_defaults_follow_the_space():
    assert Encoder(nas.create_space("nb201")).encoding == ("path-stats", "costs")
    macro = nas.create_space("macro-cnn", input_shape=(1, 8, 8))
    assert Encoder(macro).encoding == ("onehot", "costs")
    with pytest.raises(nas.InvalidOptionError, match="need a cell space; macro-cnn is not one"):
        Encoder(macro, ["path"])


def test_unknown_encoding_lists_the_known_ones(nb201):
    with pytest.raises(nas.InvalidOptionError, match="unknown encodings \\['graph'\\]; choose from onehot, adjacency"):
        Encoder(nb201, ["onehot", "graph"])


def test_proxy_features_come_from_an_evaluator(nb201, data_dir, make_context):
    context = make_context("nb201-table", nb201, nas.DataSpec("cifar10", str(data_dir)))
    table = nas.create_evaluator("nb201-table", context, devices=[])
    encoder = Encoder(nb201, proxies=table)
    assert encoder.encoding == ("path-stats", "costs", "proxies")
    archs = table.archs()[:5]
    accuracy = np.array([r.metrics["accuracy"] for r in table.evaluate([nb201.canonical(a) for a in archs])])
    assert np.allclose(encoder(archs)[:, -1], np.log1p(accuracy))
    with pytest.raises(nas.InvalidOptionError, match="give both or neither"):
        Encoder(nb201, ["onehot", "proxies"])
