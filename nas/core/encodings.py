"""Architecture encodings: feature vectors for performance predictors, from a space's dimensions and, for cell
spaces, from the cell's graph."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nas.core.errors import InvalidOptionError
from nas.core.evaluation import Evaluator
from nas.core.space import Architecture, CellGraph, NetworkSpace, SearchSpace

#: Costs known without an evaluation, by name (``macs``, ``latency:pixel3``), for a list of architectures.
KnownCosts = Callable[[Sequence[Architecture]], Mapping[str, Sequence[float]]]

#: The encodings an `Encoder` can concatenate; ``adjacency``, ``path`` and ``path-stats`` need a cell space.
ENCODINGS = ("onehot", "adjacency", "path", "path-stats", "costs", "proxies")
#: How many random architectures fix the scale of the cost features (the same sample for every seed).
_SCALING_SAMPLE = 256


def space_costs(space: SearchSpace) -> KnownCosts:
    """MACs and parameters from the space's analytic cost model (none for a space that builds no networks)."""

    def costs(archs: Sequence[Architecture]) -> dict[str, list[float]]:
        if not isinstance(space, NetworkSpace):
            return {}
        counted = [space.cost(arch) for arch in archs]
        return {"macs": [c.macs for c in counted], "params": [c.params for c in counted]}

    return costs


def cost_matrix(known_costs: KnownCosts, names: Sequence[str], archs: Sequence[Architecture]) -> np.ndarray:
    """The known costs called ``names`` of each architecture: one row per architecture, one column per name."""
    known = known_costs(archs)
    return np.array([known[n] for n in names], dtype=float).T.reshape(len(archs), len(names))


class RowCache:
    """Rows of numbers by ``arch_id``: ``compute`` runs once per architecture (on the new ones of each call)."""

    def __init__(self, compute: Callable[[list[Architecture]], np.ndarray]) -> None:
        self.compute = compute
        self._rows: dict[str, np.ndarray] = {}

    def __call__(self, archs: Sequence[Architecture]) -> np.ndarray:
        """One row per architecture, in order."""
        new = list({a.arch_id: a for a in archs if a.arch_id not in self._rows}.values())
        if new:
            self._rows.update((arch.arch_id, row) for arch, row in zip(new, self.compute(new), strict=True))
        return np.array([self._rows[a.arch_id] for a in archs]).reshape(len(archs), -1)

    def forget(self, keep: set[str]) -> None:
        """Drop the rows of every architecture whose ``arch_id`` is not in ``keep``."""
        self._rows = {key: row for key, row in self._rows.items() if key in keep}


def one_hot(space: SearchSpace, archs: Sequence[Architecture]) -> np.ndarray:
    """One-hot choices of each architecture, one column per option of each of the space's dimensions."""
    dims = space.dimensions()
    offsets = np.cumsum([0] + [len(d.options) for d in dims])
    features = np.zeros((len(archs), offsets[-1]))
    for row, arch in enumerate(archs):
        for dim, offset in zip(dims, offsets, strict=False):
            features[row, offset + dim.index(arch.choices[dim.name])] = 1.0
    return features


def live_edges(cell: CellGraph) -> list[tuple[int, int, str]]:
    """The edges that carry an operation and lie on a path from the input (node 0) to the output (the last node)."""
    edges = [e for e in cell.edges if e[2] != cell.zero]
    reached, reaching = {0}, {cell.nodes - 1}
    for source, target, _ in sorted(edges):
        if source in reached:
            reached.add(target)
    for source, target, _ in sorted(edges, reverse=True):
        if target in reaching:
            reaching.add(source)
    return [e for e in edges if e[0] in reached and e[1] in reaching]


def paths(cell: CellGraph) -> list[tuple[str, ...]]:
    """The operation sequence of every path from the input to the output."""
    outgoing: dict[int, list[tuple[int, str]]] = {}
    for source, target, op in live_edges(cell):
        outgoing.setdefault(source, []).append((target, op))

    def walk(node: int) -> list[tuple[str, ...]]:
        if node == cell.nodes - 1:
            return [()]
        return [(op, *rest) for target, op in outgoing.get(node, []) for rest in walk(target)]

    return walk(0)


class Encoder:
    """Turns architectures into rows of features, the concatenation of the chosen encodings:

    - ``onehot``: one column per option of each dimension (any space);
    - ``adjacency``: one column per (source, target, operation) of the cell: 1 when that edge carries that operation
      and lies on a path from input to output;
    - ``path``: for each sequence of operations, how many input-to-output paths of the cell carry it (the path
      encoding of BANANAS, White et al. 2021);
    - ``path-stats``: summaries of the input-to-output paths that a model learns from far fewer examples than the
      paths themselves: how many paths there are, their longest and shortest lengths, whether there is none; and
      for each operation the most and fewest times a path carries it, how many paths carry it, consist of it alone
      and end with it, and how many live edges carry it;
    - ``costs``: the logarithms of the known costs, standardized over a fixed random sample of the space;
    - ``proxies``: the metrics of a cheap evaluator (zero-cost proxies, say), as ``sign(x) * log(1 + |x|)``.

    With ``canonical`` (the default) an architecture is encoded by its canonical form, so that architectures that
    compute the same function share their features and an isomorph carrying dead operations is not credited for
    them. Rows are cached by ``arch_id``; `forget` trims the cache.

    Args:
        space: the search space.
        encoding: names from `ENCODINGS`; default ``path-stats, costs`` for cell spaces, else ``onehot, costs``.
        known_costs: the costs of the ``costs`` encoding; default MACs and parameters from the space's cost model.
        canonical: encode the canonical form of each architecture.
        proxies: the evaluator of the ``proxies`` encoding; giving one adds that encoding to the default ones.

    Example:
        >>> encoder = Encoder(nas.create_space("nb201"), ["path"])  # doctest: +SKIP
        >>> encoder([arch]).shape  # doctest: +SKIP
        (1, 84)
    """

    def __init__(
        self,
        space: SearchSpace,
        encoding: str | Sequence[str] | None = None,
        known_costs: KnownCosts | None = None,
        canonical: bool = True,
        proxies: Evaluator | None = None,
    ) -> None:
        probe = space.cell(space.sample(0))
        if encoding is None:
            encoding = ("path-stats", "costs") if probe is not None else ("onehot", "costs")
            encoding += ("proxies",) if proxies is not None else ()
        self.encoding = (encoding,) if isinstance(encoding, str) else tuple(encoding)
        if ("proxies" in self.encoding) != (proxies is not None):
            raise InvalidOptionError("the proxies encoding and a proxies evaluator go together: give both or neither")
        unknown = [e for e in self.encoding if e not in ENCODINGS]
        if unknown or not self.encoding:
            raise InvalidOptionError(
                f"unknown encodings {unknown or '(none given)'}; choose from {', '.join(ENCODINGS)}"
            )
        if probe is None and {"adjacency", "path", "path-stats"} & set(self.encoding):
            raise InvalidOptionError(
                f"the adjacency, path and path-stats encodings need a cell space; {space.name} is not one: "
                "use onehot or costs"
            )
        self.space, self.canonical, self.proxies = space, canonical, proxies
        self.known_costs = known_costs or space_costs(space)
        if probe is not None:
            self._ops = ops = [op for op in probe.operations if op != probe.zero]
            pairs = [(s, t) for t in range(probe.nodes) for s in range(t)]
            self._edge_columns = {(s, t, op): i for i, (s, t, op) in enumerate((*p, op) for p in pairs for op in ops)}
            sequences = (seq for n in range(1, probe.nodes) for seq in itertools.product(ops, repeat=n))
            self._path_columns = {seq: i for i, seq in enumerate(sequences)}
        if "costs" in self.encoding:
            sample = space.sample_many(_SCALING_SAMPLE, 0)
            self.cost_names = sorted(self.known_costs(sample[:1]))
            logs = self._log_costs([space.canonical(a) for a in sample] if canonical else sample)
            self._cost_shift, self._cost_scale = logs.mean(axis=0), logs.std(axis=0) + 1e-12
        self._rows = RowCache(self._compute)

    def __call__(self, archs: Sequence[Architecture]) -> np.ndarray:
        """One row of features per architecture."""
        return self._rows(archs)

    def forget(self, keep: set[str]) -> None:
        """Drop the cached rows of every architecture whose ``arch_id`` is not in ``keep``."""
        self._rows.forget(keep)

    def _compute(self, archs: list[Architecture]) -> np.ndarray:
        described = [self.space.canonical(a) for a in archs] if self.canonical else archs
        return np.hstack([self._encode(name, described) for name in self.encoding])

    def _encode(self, name: str, archs: Sequence[Architecture]) -> np.ndarray:
        if name == "onehot":
            return one_hot(self.space, archs)
        if name == "costs":
            return (self._log_costs(archs) - self._cost_shift) / self._cost_scale
        if name == "proxies":
            return self._proxy_features(archs)
        cells = [self.space.cell(arch) for arch in archs]
        if name == "path-stats":
            return np.array([self._path_stats(cell) for cell in cells if cell is not None], dtype=float)
        columns: Mapping[Any, int] = self._edge_columns if name == "adjacency" else self._path_columns
        features = np.zeros((len(archs), len(columns)))
        for row, cell in enumerate(cells):
            assert cell is not None
            keys: Sequence[Any] = live_edges(cell) if name == "adjacency" else paths(cell)
            for key in keys:
                features[row, columns[key]] += 1.0
        return features

    def _path_stats(self, cell: CellGraph) -> list[int]:
        found, edges = paths(cell), live_edges(cell)
        lengths = [len(p) for p in found] or [0]
        stats = [len(found), max(lengths), min(lengths), int(not found)]
        for op in self._ops:
            counts = [p.count(op) for p in found] or [0]
            stats += [
                max(counts),
                min(counts),
                sum(1 for c in counts if c),
                sum(1 for p in found if set(p) == {op}),
                sum(1 for p in found if p[-1:] == (op,)),
                sum(1 for e in edges if e[2] == op),
            ]
        return stats

    def _proxy_features(self, archs: Sequence[Architecture]) -> np.ndarray:
        assert self.proxies is not None
        results = self.proxies.evaluate(archs)
        failed = next((r for r in results if not r.ok), None)
        if failed is not None:
            raise InvalidOptionError(f"the proxies evaluator failed on {failed.arch_id}: {failed.reason}")
        names = sorted(results[0].metrics)
        values = np.array([[r.metrics.get(n, np.nan) for n in names] for r in results], dtype=float)
        return np.nan_to_num(np.sign(values) * np.log1p(np.abs(values)))

    def _log_costs(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.log1p(np.abs(cost_matrix(self.known_costs, self.cost_names, archs)))
