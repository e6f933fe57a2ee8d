"""The learned, balanced assignment of pooling configurations to the supernets of a mixture.

As in "Balanced Mixture of SuperNets for Learning the CNN Pooling Architecture" (Roshtkhari et al., 2023), each
configuration trains and is evaluated on one of K supernets, so that configurations that harm each other stop
sharing weights. The assignment is learned from the training losses: an exponential moving average of each
(configuration, supernet) loss, turned into probabilities by a softmax over the negative losses and balanced with
Sinkhorn-Knopp iterations, so that every supernet keeps an equal share of the configurations (without balancing, one
supernet that happens to train faster would attract every configuration and the mixture would collapse into one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Weight of the newest loss in a (configuration, supernet) moving average.
_RATE = 0.3
_SINKHORN_ITERATIONS = 100


class BalancedAssignment:
    """Probabilities of training each configuration on each of ``supernets`` supernets; rows sum to 1, columns to
    ``configurations / supernets``."""

    def __init__(self, configurations: Sequence[str], supernets: int, temperature: float) -> None:
        self.configurations = list(configurations)
        self.index = {c: i for i, c in enumerate(self.configurations)}
        self.temperature = temperature
        self.losses = np.full((len(self.configurations), supernets), np.nan)
        self._probabilities: np.ndarray | None = None

    def observe(self, configuration: str, supernet: int, loss: float) -> None:
        """Record a training loss of ``configuration`` on ``supernet``."""
        row = self.index[configuration]
        old = self.losses[row, supernet]
        self.losses[row, supernet] = loss if np.isnan(old) else (1 - _RATE) * old + _RATE * loss
        self._probabilities = None

    def probabilities(self) -> np.ndarray:
        """The balanced assignment (configurations x supernets); pairs not trained yet count the mean loss."""
        if self._probabilities is None:
            seen = self.losses[~np.isnan(self.losses)]
            losses = np.where(np.isnan(self.losses), seen.mean() if seen.size else 0.0, self.losses)
            p = np.exp(-(losses - losses.min(axis=1, keepdims=True)) / self.temperature)
            rows, columns = p.shape
            for _ in range(_SINKHORN_ITERATIONS):
                p *= rows / columns / p.sum(axis=0, keepdims=True)
                p /= p.sum(axis=1, keepdims=True)
            self._probabilities = p
        return self._probabilities

    def choose(self, configuration: str, rng: np.random.Generator) -> int:
        """The supernet that trains ``configuration`` now, drawn from its probabilities."""
        return int(rng.choice(self.losses.shape[1], p=self.probabilities()[self.index[configuration]]))

    def supernet_of(self, configuration: str) -> int:
        """The supernet that evaluates ``configuration``: its most probable one."""
        return int(np.argmax(self.probabilities()[self.index[configuration]]))

    def state(self) -> dict[str, Any]:
        return {"configurations": self.configurations, "losses": self.losses.tolist(), "temperature": self.temperature}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BalancedAssignment:
        assignment = cls(state["configurations"], len(state["losses"][0]), state["temperature"])
        assignment.losses = np.asarray(state["losses"], dtype=float)
        return assignment
