"""Non-dominated sorting, hypervolume and `ParetoFront`: hand-computed cases, brute force, Optuna, NAS-Bench-201."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from optuna._hypervolume import compute_hypervolume
from optuna.study._multi_objective import _fast_non_domination_rank, _is_pareto_front

from nas.core.errors import InvalidOptionError
from nas.core.evaluation import Direction
from nas.core.pareto import ParetoFront, hypervolume, non_dominated_sort, normalize, pareto_mask

MIXED = {1: ["min"], 2: ["max", "min"], 3: ["min", "max", "min"], 4: ["max", "min", "max", "min"]}


def _losses(values: np.ndarray, directions: list[str]) -> np.ndarray:
    """What Optuna and the brute force take: every objective minimized."""
    return np.where(np.array(directions) == "max", -np.asarray(values, dtype=float), np.asarray(values, dtype=float))


def _brute_fronts(values: np.ndarray, directions: list[str]) -> list[list[int]]:
    """Fronts by the definition: O(n^2) dominance, then peel the rows that no remaining row dominates."""
    loss = _losses(values, directions)
    dominates = np.logical_and((loss[:, None] <= loss[None]).all(axis=2), (loss[:, None] < loss[None]).any(axis=2))
    remaining, fronts = list(range(len(loss))), []
    while remaining:
        front = [j for j in remaining if not dominates[remaining, j].any()]
        fronts.append(front)
        remaining = [j for j in remaining if j not in front]
    return fronts


def _inclusion_exclusion(values: np.ndarray, reference: np.ndarray, directions: list[str]) -> float:
    """Exact volume of the union of the boxes [point, reference], by inclusion-exclusion over all subsets."""
    loss, ref = _losses(values, directions), _losses(reference, directions)
    total = 0.0
    for size in range(1, len(loss) + 1):
        for subset in itertools.combinations(range(len(loss)), size):
            corner = loss[list(subset)].max(axis=0)
            total += (-1) ** (size + 1) * float(np.prod(np.clip(ref - corner, 0.0, None)))
    return total


def _optuna_hypervolume(values: np.ndarray, reference: np.ndarray, directions: list[str]) -> float:
    """Optuna's exact hypervolume (minimization, only points that dominate the reference)."""
    loss, ref = _losses(values, directions), _losses(reference, directions)
    return float(compute_hypervolume(loss[np.all(loss < ref, axis=1)], ref))


def _points(seed: int, n: int, m: int, ties: bool) -> np.ndarray:
    """Random points; with ``ties`` on a small integer grid, so that equal coordinates and duplicates abound."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 5, size=(n, m)).astype(float) if ties else rng.normal(size=(n, m))


# -- hand-computed examples ----------------------------------------------------------------------------------------
def test_two_objectives_by_hand() -> None:
    values = [[90, 5], [92, 9], [89, 7], [88, 11]]  # accuracy up, cost down
    assert [f.tolist() for f in non_dominated_sort(values, ["max", "min"])] == [[0, 1], [2], [3]]
    assert pareto_mask(values, ["max", "min"]).tolist() == [True, True, False, False]
    # (90-80)(10-5) + (92-80)(10-9) - (90-80)(10-9); the last point is beyond the reference
    assert hypervolume(values, [80, 10], ["max", "min"]) == 52.0


def test_three_objectives_by_hand() -> None:
    unit = np.eye(3)  # three unit steps from the origin, minimized, reference (2, 2, 2): the cube less one corner
    assert hypervolume(unit, [2, 2, 2], ["min"] * 3) == 7.0
    assert hypervolume(-unit, [-2, -2, -2], ["max"] * 3) == 7.0
    assert pareto_mask(np.vstack([unit, [1, 1, 1]]), ["min"] * 3).tolist() == [True, True, True, False]


def test_identical_points_share_a_front_and_count_once() -> None:
    values = [[1, 1], [1, 1], [0, 2], [2, 0], [2, 2], [2, 2]]
    assert [f.tolist() for f in non_dominated_sort(values, ["min", "min"])] == [[0, 1, 2, 3], [4, 5]]
    assert hypervolume(values, [3, 3], ["min", "min"]) == hypervolume(values[1:4], [3, 3], ["min", "min"]) == 6.0


def test_points_that_do_not_strictly_dominate_the_reference_add_nothing() -> None:
    directions = ["max", "min"]
    assert hypervolume([[10, 1]], [10, 5], directions) == 0.0  # on the reference's accuracy
    assert hypervolume([[12, 5]], [10, 5], directions) == 0.0  # on the reference's cost
    assert hypervolume([[12, 1], [12, 5], [9, 0]], [10, 5], directions) == 8.0


def test_infinite_values() -> None:
    values = np.array([[1.0, 1.0], [math.inf, 1.0]])
    assert hypervolume(values, [2, 2], ["min", "min"]) == 1.0  # infinitely bad: outside
    assert hypervolume(values, [0, 2], ["max", "min"]) == math.inf
    assert pareto_mask([*values, [-math.inf, 3.0]], ["min", "min"]).tolist() == [True, False, True]


def test_one_objective() -> None:
    values = [[3], [1], [2], [1]]
    assert [f.tolist() for f in non_dominated_sort(values, ["min"])] == [[1, 3], [2], [0]]
    assert hypervolume(values, [5], ["min"]) == 4.0


def test_empty_input() -> None:
    assert non_dominated_sort([], ["max", "min"]) == []
    assert pareto_mask(np.zeros((0, 3)), ["min"] * 3).shape == (0,)
    assert hypervolume([], [1, 1], ["min", "min"]) == 0.0
    front = ParetoFront([], ["max", "min"])
    assert len(front) == 0 and front.points.shape == (0, 2) and front.hypervolume([0, 1]) == 0.0


def test_directions_accept_members_and_strings() -> None:
    values = _points(0, 50, 3, ties=True)
    members = [Direction.MAX, Direction.MIN, Direction.MAX]
    assert pareto_mask(values, members).tolist() == pareto_mask(values, ["max", "min", "max"]).tolist()
    assert hypervolume(values, [0, 5, 0], members) == hypervolume(values, [0, 5, 0], ["max", "min", "max"])


# -- brute force and Optuna ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("ties", [True, False], ids=["grid", "normal"])
@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", range(3))
def test_sort_matches_brute_force(seed: int, m: int, ties: bool) -> None:
    values = _points(seed, 120, m, ties)
    fronts = non_dominated_sort(values, MIXED[m])
    assert [f.tolist() for f in fronts] == _brute_fronts(values, MIXED[m])
    assert pareto_mask(values, MIXED[m]).tolist() == np.isin(np.arange(len(values)), fronts[0]).tolist()


@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("ties", [True, False], ids=["grid", "normal"])
def test_sort_matches_optuna(m: int, ties: bool) -> None:
    values = _points(7, 2000, m, ties)
    ranks = np.empty(len(values), dtype=int)
    for rank, members in enumerate(non_dominated_sort(values, MIXED[m])):
        ranks[members] = rank
    loss = _losses(values, MIXED[m])
    assert ranks.tolist() == _fast_non_domination_rank(loss).tolist()
    assert pareto_mask(values, MIXED[m]).tolist() == _is_pareto_front(loss, assume_unique_lexsorted=False).tolist()


@pytest.mark.parametrize("ties", [True, False], ids=["grid", "normal"])
@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", range(4))
def test_hypervolume_matches_inclusion_exclusion(seed: int, m: int, ties: bool) -> None:
    values = _points(seed, 10, m, ties)
    reference = np.where(np.array(MIXED[m]) == "max", 1.0, 3.0) if ties else np.zeros(m)  # some points beyond it
    expected = _inclusion_exclusion(values, reference, MIXED[m])
    assert hypervolume(values, reference, MIXED[m]) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("ties", [True, False], ids=["grid", "normal"])
@pytest.mark.parametrize(("m", "n"), [(2, 400), (3, 400), (4, 150)])
def test_hypervolume_matches_optuna(m: int, n: int, ties: bool) -> None:
    values = _points(11, n, m, ties)
    reference = np.where(np.array(MIXED[m]) == "max", 1.0, 3.0) if ties else np.zeros(m)
    expected = _optuna_hypervolume(values, reference, MIXED[m])
    assert expected > 0
    assert hypervolume(values, reference, MIXED[m]) == pytest.approx(expected, rel=1e-12)


# -- normalize and ParetoFront -------------------------------------------------------------------------------------
def test_normalize_maps_bounds_to_zero_and_one_larger_better() -> None:
    values = [[80, 10], [100, 0], [90, 5], [110, -5]]
    scaled = normalize(values, [80, 0], [100, 10], ["max", "min"])
    assert scaled.tolist() == [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5], [1.5, 1.5]]


def test_normalized_hypervolume_is_scaled_by_the_box() -> None:
    values, directions = _points(3, 200, 3, ties=False), MIXED[3]
    lows, highs, reference = values.min(axis=0), values.max(axis=0), np.array([1.0, -1.0, 1.0])
    scaled = normalize(np.vstack([values, reference]), lows, highs, directions)
    ratio = hypervolume(scaled[:-1], scaled[-1], ["max"] * 3) / hypervolume(values, reference, directions)
    assert ratio == pytest.approx(1 / np.prod(highs - lows), rel=1e-12)


def test_pareto_front() -> None:
    values = _points(5, 300, 2, ties=True)
    ids = [f"arch{i}" for i in range(len(values))]
    front = ParetoFront(values, ["max", "min"], ids=ids)
    mask = pareto_mask(values, ["max", "min"])
    assert front.indices.tolist() == np.flatnonzero(mask).tolist() and len(front) == mask.sum()
    assert front.points.tolist() == values[mask].tolist()
    assert front.ids == tuple(ids[i] for i in np.flatnonzero(mask))
    assert front.hypervolume([0, 4]) == hypervolume(values, [0, 4], ["max", "min"]) > 0
    assert ParetoFront(values, ["max", "min"]).ids == tuple(str(i) for i in np.flatnonzero(mask))
    assert repr(front) == f"ParetoFront({len(front)} points, directions=['max', 'min'])"
    with pytest.raises(ValueError, match="read-only"):
        front.points[0, 0] = 0.0


# -- invalid input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pareto_mask([[1.0, 2.0], [3.0, 4.0], [5.0, math.nan]], ["max", "min"]), r"values row 2 has NaN"),
        (lambda: pareto_mask([[1, 2, 3]], ["max", "min"]), r"shape \(1, 3\); expected \(n points, 2 objectives\)"),
        (lambda: pareto_mask([1, 2], ["max", "min"]), r"shape \(2,\)"),
        (lambda: pareto_mask([["a", "2"]], ["max", "min"]), r"values must be numbers"),
        (lambda: pareto_mask([[1, 2]], ["max", "maximize"]), r"'maximize' of objective 1 is not one of \['max'"),
        (lambda: pareto_mask([[1, 2]], "max"), r"directions must list one 'max' or 'min' per objective"),
        (lambda: non_dominated_sort([[1]], []), r"directions must list"),
        (lambda: hypervolume([[1, 2]], [0, 1, 2], ["max", "min"]), r"reference point must be 2 finite numbers"),
        (lambda: hypervolume([[1, 2]], [0, math.inf], ["max", "min"]), r"reference point must be 2 finite"),
        (lambda: normalize([[1, 2]], [0, 5], [1, 5], ["max", "min"]), r"low < high; got lows \[0.0, 5.0\]"),
        (lambda: normalize([[1, 2]], [0], [1, 5], ["max", "min"]), r"lows must be 2 finite numbers"),
        (lambda: ParetoFront([[1, 2]], ["max", "min"], ids=["a", "b"]), r"2 ids for 1 points"),
    ],
)
def test_invalid_input_is_named(call: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        call()


# -- NAS-Bench-201: the true fronts of accuracy against device latency --------------------------------------------
@pytest.fixture(scope="module")
def nb201(data_dir: Path) -> pd.DataFrame:
    accuracy = pd.read_csv(data_dir / "nats_bench_tss_csv" / "nats_bench.csv")["CIFAR10TestAccuracy200Epochs"]
    return pd.read_csv(data_dir / "nb201_latency_help" / "nb201_latency_27settings.csv").join(accuracy)


def test_nb201_front_of_accuracy_and_pixel3_latency(nb201: pd.DataFrame) -> None:
    values = nb201[["CIFAR10TestAccuracy200Epochs", "pixel3"]].to_numpy()
    reference = [nb201["CIFAR10TestAccuracy200Epochs"].median(), nb201["pixel3"].max()]
    start = time.perf_counter()
    front = ParetoFront(values, ["max", "min"])
    volume = front.hypervolume(reference)
    elapsed = time.perf_counter() - start
    assert len(values) == 15_625 and len(front) == 44  # as the data's SOURCE.md says
    assert elapsed < 0.5, f"front and hypervolume of 15,625 points took {elapsed:.3f} s"
    assert volume == pytest.approx(_optuna_hypervolume(values, np.array(reference), ["max", "min"]), rel=1e-12)
    assert volume == pytest.approx(hypervolume(values, reference, ["max", "min"]), rel=1e-12)  # all rows, not the front


def test_nb201_fpga_front_has_duplicated_cells(nb201: pd.DataFrame) -> None:
    values = nb201[["CIFAR10TestAccuracy200Epochs", "fpga"]].to_numpy()
    front = ParetoFront(values, ["max", "min"])
    assert len(np.unique(front.points, axis=0)) == 13  # SOURCE.md's count of distinct points
    assert len(front) == 16  # three of them are shared by two cells each, both on the front


def test_nb201_three_objectives_match_optuna(nb201: pd.DataFrame) -> None:
    directions = ["max", "min", "min"]
    values = nb201[["CIFAR10TestAccuracy200Epochs", "pixel3", "fpga"]].to_numpy()
    reference = np.array([nb201["CIFAR10TestAccuracy200Epochs"].median(), nb201["pixel3"].max(), nb201["fpga"].max()])
    mask = pareto_mask(values, directions)
    assert mask.tolist() == _is_pareto_front(_losses(values, directions), assume_unique_lexsorted=False).tolist()
    expected = _optuna_hypervolume(values, reference, directions)
    assert hypervolume(values, reference, directions) == pytest.approx(expected, rel=1e-12)
