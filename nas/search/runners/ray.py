"""The Ray adapter, the only module that imports Ray: evaluations on an embedded local Ray or on a cluster.

Cheap evaluators (tables, predictors, proxies) get batches on long-lived actors, one per worker. Expensive ones
(training) run as Ray Tune trials on reused actors, each trial evaluating its architecture at the evaluator's fidelity
steps under ASHA, which stops the unpromising ones after a cheap step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import pickle
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.core.errors import InvalidOptionError, MissingExtraError, WorkerSetupError
from nas.core.evaluation import EvalResult, Evaluator, Objective, Provenance, Status
from nas.core.plugins import WORKER_PLUGINS_ENV, creation_failure, worker_modules
from nas.core.space import Architecture
from nas.search.runners._base import EvaluatorSpec, Loop, Runner

#: Environment of an embedded Ray: no login token, no usage reports, a head on 127.0.0.1 only.
RAY_ENVIRONMENT = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    # Ray Train's second version schedules through an autoscaling coordinator that, on a busy small machine, waits
    # minutes before starting the workers; the first starts them at once.
    "RAY_TRAIN_V2_ENABLED": "0",
    "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
    # Tune trials keep the driver's working directory instead of one of their own (Tune forwards this to its
    # actors), so that a relative path in an evaluator's options means what it means where the user typed it.
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
}
for _key, _value in RAY_ENVIRONMENT.items():
    os.environ.setdefault(_key, _value)

try:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import Searcher
    from ray.tune.stopper import Stopper

    from nas.search.runners._reaper import Reaper  # psutil, part of the ray extra
except ImportError as _error:  # pragma: no cover - the ray extra is part of `all`
    raise MissingExtraError("the Ray runner needs Ray: pip install 'nas-pareto[ray]'") from _error

SCHEDULERS = ("asha", "fifo")


class RayRunner(Runner):
    """Runs evaluations on Ray workers.

    Args:
        address: None for an embedded local Ray (started here, stopped at the end), ``auto`` or ``HOST:PORT`` for an
            existing cluster.
        workers: evaluations in flight at once.
        batch_size: architectures per batch of a cheap evaluator.
        resources: per evaluation, e.g. ``{"cpu": 1, "gpu": 0.5}``; other keys are custom Ray resources.
        scheduler: ``asha`` (stop unpromising training early, when the evaluator has fidelity steps) or ``fifo``.
        workdir: where Tune keeps its trial records (default: a temporary directory).
        plugins: what every worker imports before it creates anything (module names, absolute paths of Python
            files: see `nas.core.plugins`); the files are shipped to each node. Only when this runner starts or joins
            Ray: in a Ray session of the caller's, the session's runtime environment holds.

    A worker that cannot create the evaluator (its plugin is missing there, its constructor raises) stops the search
    at once with `WorkerSetupError`.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int = 1,
        batch_size: int = 16,
        resources: Mapping[str, float] | None = None,
        scheduler: str = "asha",
        workdir: str | Path | None = None,
        plugins: Sequence[str] = (),
    ) -> None:
        super().__init__(workers, batch_size)
        if scheduler not in SCHEDULERS:
            raise InvalidOptionError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        self.address, self.scheduler, self.workdir = address, scheduler, workdir
        self.plugins = list(plugins)
        resources = dict(resources or {"cpu": 1.0})
        self.options: dict[str, Any] = {"num_cpus": resources.pop("cpu", 1.0), "num_gpus": resources.pop("gpu", 0.0)}
        if resources:
            self.options["resources"] = resources

    def check(self) -> None:
        if self.address is not None and not ray.is_initialized():
            try:
                _reachable(self.address)
            except ConnectionError as error:
                raise self._unreachable(error) from None

    def run(self, loop: Loop, spec: EvaluatorSpec, evaluator: Evaluator) -> None:
        with self._connect():
            if evaluator.expensive:
                self._trials(loop, spec, evaluator)
            else:
                self._actors(loop, spec, evaluator)

    def _connect(self) -> contextlib.ExitStack:
        """Join the cluster at ``address``, or start a local Ray; closing what it returns stops what it started."""
        started = contextlib.ExitStack()
        if ray.is_initialized():
            return started
        common: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": True}
        if self.plugins:
            common["runtime_env"] = runtime_env(self.plugins)
        if self.address is None:
            # Ray's raylet dies with this process, not its agents: killed, it would leave them running a minute or more
            started.enter_context(Reaper())
            ray.init(num_cpus=os.cpu_count(), **common)
        else:
            try:
                _reachable(self.address)
                ray.init(address=self.address, **common)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise self._unreachable(error) from error
        started.callback(ray.shutdown)
        return started

    def _unreachable(self, error: Exception) -> InvalidOptionError:
        return InvalidOptionError(
            f"cannot reach a Ray cluster at {self.address!r} ({error}); start one with `ray start --head` and give "
            "its HOST:PORT, `auto` for the cluster on this machine, or no address for a local Ray"
        )

    def _actors(self, loop: Loop, spec: EvaluatorSpec, evaluator: Evaluator) -> None:
        """Batches on one long-lived actor per worker, refilled as each batch comes back."""
        actor_class = ray.remote(_EvaluatorActor).options(**self.options)
        idle: list[Any] = [actor_class.remote(spec) for _ in range(self.workers)]
        pending: dict[Any, tuple[Any, list[Architecture]]] = {}
        try:
            while True:
                while idle and (archs := loop.propose(self.batch(evaluator))):
                    actor = idle.pop()
                    pending[actor.evaluate.remote(archs)] = (actor, archs)
                if not pending:
                    return
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                actor, archs = pending.pop(ref)
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayError as error:  # the worker died: its batch fails, a new worker takes over
                    setup = _setup_failure(spec, error)
                    if setup is not None:  # the evaluator cannot be created there: every batch would fail alike
                        raise WorkerSetupError(setup) from None
                    reason = f"the Ray worker failed: {_first_line(error)}"
                    results = [EvalResult.failed(a, reason, Provenance(spec.name), retryable=True) for a in archs]
                    ray.kill(actor)
                    actor = actor_class.remote(spec)
                idle.append(actor)
                loop.record(results)
        finally:  # a batch in flight is dropped with its actor (Ray cannot force-cancel an actor's task)
            for actor, _ in pending.values():
                ray.kill(actor)

    def _trials(self, loop: Loop, spec: EvaluatorSpec, evaluator: Evaluator) -> None:
        """One Tune trial per architecture, on reused actors; ASHA over the evaluator's fidelity steps."""
        steps: list[dict[str, float] | None] = list(evaluator.fidelity_steps()) or [None]
        objective = loop.primary
        if self.scheduler == "asha" and len(steps) > 1:
            scheduler: Any = ASHAScheduler(time_attr="step", max_t=len(steps), grace_period=1, reduction_factor=2)
        else:
            scheduler, steps = FIFOScheduler(), steps[-1:]  # no early stopping: the full fidelity only
        trainable = tune.with_resources(
            tune.with_parameters(_trial, spec=spec, steps=steps, objective=objective),
            {"cpu": self.options["num_cpus"], "gpu": self.options["num_gpus"], **self.options.get("resources", {})},
        )
        searcher = _LoopSearcher(loop, spec.name, len(steps))
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                metric="score",
                mode="max",
                num_samples=-1,
                trial_dirname_creator=lambda trial: trial.trial_id,
                max_concurrent_trials=self.workers,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                storage_path=None if self.workdir is None else str(Path(self.workdir).resolve()),
                verbose=0,
                log_to_file=False,
                stop=_SetupStopper(),
            ),
        )
        tune_logger = logging.getLogger("ray.tune")
        level = tune_logger.level
        tune_logger.setLevel(logging.ERROR)  # Tune's own advice on Ctrl-C (Tuner.restore) is not how a search resumes
        try:
            tuner.fit()
        finally:
            tune_logger.setLevel(level)
        if searcher.setup_failure is not None:
            raise WorkerSetupError(searcher.setup_failure)
        if not searcher.finished:  # Tune ends quietly on Ctrl-C; the search must know it was stopped
            raise KeyboardInterrupt


def runtime_env(plugins: Sequence[str]) -> dict[str, Any]:
    """Ray's runtime environment for a search's workers: each imports the ``plugins`` (module names, absolute paths
    of Python files) as it starts, before it creates anything (``worker_process_setup_hook``); the files are shipped
    to every node (``py_modules``), where they are imported by their names."""
    files = [p for p in plugins if os.path.isabs(p)]
    env: dict[str, Any] = {
        "env_vars": {WORKER_PLUGINS_ENV: os.pathsep.join(worker_modules(plugins))},
        "worker_process_setup_hook": "nas.core.plugins.load_worker_plugins",
    }
    if files:
        env["py_modules"] = files
    return env


def _setup_failure(spec: EvaluatorSpec, error: ray.exceptions.RayError) -> str | None:
    """Why a worker could not create the evaluator, when that is what ``error`` says (None otherwise)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, WorkerSetupError):
        return str(cause)
    if isinstance(error, ray.exceptions.RayActorError) and error.actor_init_failed:  # what it was sent did not load
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return creation_failure("evaluator", spec.name, RuntimeError(lines[-1] if lines else "its actor failed"))
    return None


def _first_line(error: BaseException) -> str:
    """The first line of an error's message (Ray's carry the remote traceback after it)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _reachable(address: str, timeout_s: float = 10.0) -> None:
    """Raise ConnectionError unless something listens at ``HOST:PORT``: given an address where no Ray head runs,
    ``ray.init`` retries for many minutes instead of failing. Other forms (``auto``, ``ray://...``) are Ray's to
    judge."""
    host, _, port = address.rpartition(":")
    if not host or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ConnectionError(f"nothing answers at {address}: {error}") from error


class _EvaluatorActor:
    """Holds one evaluator for the life of the search, so its data and models load once per worker."""

    def __init__(self, spec: EvaluatorSpec) -> None:
        self.evaluator: Evaluator | None = None
        self.failure = ""
        try:
            self.evaluator = spec.create()
        except Exception as error:  # told by the first batch, in one line (raised here, it would be a traceback)
            self.failure = _creation_failure(spec, error)

    def evaluate(self, archs: list[Architecture]) -> list[EvalResult]:
        if self.evaluator is None:
            raise WorkerSetupError(self.failure)
        return [_on_this_node(r) for r in self.evaluator.evaluate(archs)]


def _creation_failure(spec: EvaluatorSpec, error: Exception) -> str:
    """The line saying that this worker cannot create ``spec``'s evaluator, and why."""
    return creation_failure("evaluator", spec.name, error, where=f"the Ray worker on {ray.util.get_node_ip_address()}")


def _on_this_node(result: EvalResult) -> EvalResult:
    """``result`` with the Ray node that evaluated it in its provenance."""
    details = {**result.provenance.details, "ray_node": ray.get_runtime_context().get_node_id()}
    return dataclasses.replace(result, provenance=dataclasses.replace(result.provenance, details=details))


#: The evaluator of this worker process, reused by the trials Tune runs on it (reuse_actors).
_WORKER_EVALUATOR: tuple[bytes, Evaluator] | None = None


def _worker_evaluator(spec: EvaluatorSpec) -> Evaluator:
    global _WORKER_EVALUATOR
    key = pickle.dumps(spec)
    if _WORKER_EVALUATOR is None or _WORKER_EVALUATOR[0] != key:
        _WORKER_EVALUATOR = (key, spec.create())
    return _WORKER_EVALUATOR[1]


#: The key of a trial's report saying that its worker cannot create the evaluator.
SETUP_FAILURE = "setup_failure"


def _trial(
    config: dict[str, Any], spec: EvaluatorSpec, steps: list[dict[str, float] | None], objective: Objective
) -> None:
    """A Tune trial: evaluate the architecture at each fidelity step, reporting each result; or report that this
    worker cannot create the evaluator (`SETUP_FAILURE`)."""
    try:
        evaluator = _worker_evaluator(spec)
    except Exception as error:
        tune.report({"step": 0, "score": -math.inf, SETUP_FAILURE: _creation_failure(spec, error)})
        return
    arch = Architecture.from_dict(config["arch"])
    for step, budget in enumerate(steps, start=1):
        (result,) = evaluator.evaluate([arch], budget)
        result = _on_this_node(result)
        value = objective.sign() * result.value(objective.name)
        score = value if result.ok and math.isfinite(value) else -math.inf
        tune.report({"step": step, "score": score, "result": json.dumps(result.to_dict())})  # JSON: Tune flattens dicts
        if not result.ok:
            return


class _SetupStopper(Stopper):
    """Stops every trial once one reports that its worker cannot create the evaluator: the others would fail alike,
    or train on while the search cannot go on."""

    def __init__(self) -> None:
        self.failed = False

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.failed = self.failed or SETUP_FAILURE in result
        return self.failed

    def stop_all(self) -> bool:
        return self.failed


class _LoopSearcher(Searcher):
    """Tune's view of a search: each suggestion is an architecture the loop proposes; each finished trial's last
    result is recorded, as pruned when the scheduler stopped the trial before its last of ``steps`` fidelities."""

    def __init__(self, loop: Loop, evaluator: str, steps: int) -> None:
        super().__init__(metric="score", mode="max")
        self.loop, self.evaluator, self.steps = loop, evaluator, steps
        self.archs: dict[str, Architecture] = {}
        self.finished = False
        #: Why a worker could not create the evaluator, once one said so: the search stops.
        self.setup_failure: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its searcher for its own records; the loop (store connection, progress display) stays here:
        a search resumes from our store, not from Tune's records."""
        return {k: v for k, v in self.__dict__.items() if k not in ("loop", "archs")}

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the search's own state file is what a resume reads."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore (see `save`)."""

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.setup_failure is not None:
            return Searcher.FINISHED  # type: ignore[return-value]  # Tune's own sentinel
        archs = self.loop.propose(1)
        if not archs:
            if self.archs:
                return None  # proposals may come back once the trials in flight are told
            self.finished = True
            return Searcher.FINISHED  # type: ignore[return-value]  # Tune's own sentinel
        self.archs[trial_id] = archs[0]
        return {"arch": archs[0].to_dict()}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if SETUP_FAILURE in result and self.setup_failure is None:
            self.setup_failure = str(result[SETUP_FAILURE])

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        arch = self.archs.pop(trial_id, None)
        if arch is None:
            return
        if result is not None:
            self.on_trial_result(trial_id, result)
        if not error and result is not None and "result" in result:
            reported = EvalResult.from_dict(json.loads(result["result"]))
            if reported.ok and result["step"] < self.steps:
                if self.setup_failure is not None:  # stopped with the search: left for a resume to evaluate
                    return
                reported = dataclasses.replace(reported, status=Status.PRUNED)
            self.loop.record([reported])
        elif self.setup_failure is None:  # (when it is set, the trial was not the architecture's fault)
            reason = "the Tune trial failed before reporting a result" if error else "the Tune trial reported nothing"
            self.loop.record([EvalResult.failed(arch, reason, Provenance(self.evaluator), retryable=True)])


__all__ = ["RAY_ENVIRONMENT", "SCHEDULERS", "RayRunner"]
