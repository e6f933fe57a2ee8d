"""Runners: in this process (`LocalRunner`) or on Ray workers (`RayRunner`, embedded local Ray or a cluster).

Ray is imported by `nas.search.runners.ray` only, and only when a Ray runner is created.
"""

from __future__ import annotations

from typing import Any

from nas.search.runners._base import EvaluatorSpec, LocalRunner, Loop, Runner

#: The address meaning "no Ray: evaluate in this process".
LOCAL = "local"


def create_runner(address: str | None = None, workers: int = 1, batch_size: int = 16, **ray_options: Any) -> Runner:
    """A runner for ``address``: ``local`` (in process), None (embedded local Ray), ``auto`` or ``HOST:PORT``;
    ``ray_options`` (resources, scheduler, workdir, plugins: see `RayRunner`) matter only on Ray."""
    if address == LOCAL:
        return LocalRunner(workers, batch_size)
    from nas.search.runners.ray import RayRunner  # the one place that imports Ray

    return RayRunner(address, workers, batch_size, **ray_options)


__all__ = ["LOCAL", "EvaluatorSpec", "LocalRunner", "Loop", "Runner", "create_runner"]
