"""Ranking diagnostics on the real NAS-Bench-201 table: one dataset's accuracy as a cheap stand-in for another's."""

from __future__ import annotations

import pytest
from scipy.stats import kendalltau

import nas
from nas import agreement, rank_agreement


def test_agreement_figures_by_hand():
    same = agreement([1, 2, 3, 4], [10, 20, 30, 40], top_k=2)
    assert (same.kendall_tau, same.spearman, same.precision_at_k, same.k, same.count) == (1.0, 1.0, 1.0, 2, 4)
    reversed_ = agreement([4, 3, 2, 1], [10, 20, 30, 40], top_k=1)
    assert reversed_.kendall_tau == -1.0 and reversed_.precision_at_k == 0.0
    half = agreement([5, 1, 4, 2, 3], [5, 4, 1, 2, 3], top_k=2)  # both top-2 lists hold item 0, one holds 2, one 1
    assert half.precision_at_k == 0.5 and agreement([1, 2], [1, 2], top_k=50).k == 2
    with pytest.raises(nas.InvalidOptionError, match="two equally long lists"):
        agreement([1, 2, 3], [1, 2])
    with pytest.raises(nas.InvalidOptionError, match="top_k must be a positive integer"):
        agreement([1, 2], [1, 2], top_k=0)


def test_cifar10_ranks_cifar100_cells(nb201_table):
    cifar10 = nb201_table("cifar10", devices=[])
    cifar100 = nb201_table("cifar100", devices=[])
    archs = cifar10.space.sample_many(300, 0)
    found = rank_agreement(cifar10, cifar100, archs, top_k=20)
    expected = kendalltau(
        [r.value("accuracy") for r in cifar10.evaluate(archs)], [r.value("accuracy") for r in cifar100.evaluate(archs)]
    ).statistic
    assert found.count == 300 and found.kendall_tau == pytest.approx(expected)
    assert 0.7 < found.kendall_tau < found.spearman < 1 and 0.4 <= found.precision_at_k <= 1
    assert set(found.to_dict()) == {"kendall_tau", "spearman", "precision_at_k", "k", "count"}


def test_failed_architectures_are_left_out(nb201_table):
    table = nb201_table("cifar10", devices=[])
    outside = nas.create_space("resnet20-pooling").sample(0)  # not a cell: the table fails it
    archs = [*table.space.sample_many(5, 1), outside]
    assert rank_agreement(table, table, archs).count == 5
    with pytest.raises(nas.InvalidOptionError, match="only 1 of 2 architectures"):
        rank_agreement(table, table, [archs[0], outside])
