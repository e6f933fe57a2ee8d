"""Data-parallel supernet training on Ray Train (``TorchTrainer``, gloo backend).

Each worker trains the same subnets (drawn from the same seed) on its share of every batch; gradients are averaged
with one ``all_reduce`` per parameter that has one. DistributedDataParallel is not used because its reducer expects
the same graph at every step, while a supernet trains a different subnet each step.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from nas.core.errors import MissingExtraError, NASError
from nas.search.runners.ray import RAY_ENVIRONMENT  # noqa: F401  (sets the embedded Ray's environment first)

try:
    import ray
    import ray.train
    from ray.train import Checkpoint, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
except ImportError as _error:  # pragma: no cover - the ray extra is part of `all`
    raise MissingExtraError(
        "training a supernet on several workers needs Ray: pip install 'nas-pareto[ray]'"
    ) from _error

if TYPE_CHECKING:
    from evaluators.supernet._evaluator import SupernetEvaluator

_STATE = "state.pt"


def train_on_ray(evaluator: SupernetEvaluator, workers: int, workdir: Path) -> dict[str, Any]:
    """Train ``evaluator``'s supernet on ``workers`` Ray Train workers (on the running Ray, else a local one started
    and stopped here); the checkpoint's content, from rank 0."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=max(os.cpu_count() or 1, workers), include_dashboard=False, logging_level=logging.WARNING)
    try:
        trainer = TorchTrainer(
            _worker,
            train_loop_config={"evaluator": evaluator},
            torch_config=TorchConfig(backend="gloo"),
            scaling_config=ScalingConfig(
                num_workers=workers, resources_per_worker={"CPU": 1}, trainer_resources={"CPU": 0}
            ),
            run_config=RunConfig(name="supernet", storage_path=str(Path(workdir).resolve() / "ray-train")),
        )
        result = trainer.fit()
    finally:
        if started:
            ray.shutdown()
    if result.error is not None or result.checkpoint is None:
        raise NASError(f"data-parallel supernet training failed: {result.error}")
    with result.checkpoint.as_directory() as directory:
        return torch.load(Path(directory) / _STATE, weights_only=True)  # type: ignore[no-any-return]


def _worker(config: dict[str, Any]) -> None:
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()

    def mean(tensor: torch.Tensor) -> None:
        dist.all_reduce(tensor)
        tensor /= world

    state = config["evaluator"].train(sync=mean, shard=(rank, world))
    if rank == 0:
        with tempfile.TemporaryDirectory() as directory:
            torch.save(state, os.path.join(directory, _STATE))
            ray.train.report({"final_loss": state["final_loss"]}, checkpoint=Checkpoint.from_directory(directory))
    else:
        ray.train.report({"final_loss": state["final_loss"]})
