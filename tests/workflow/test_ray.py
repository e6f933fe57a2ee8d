"""Searches on an embedded local Ray: cheap evaluations in batches on actors, training as Tune trials under ASHA;
stopped or killed, a search leaves no Ray process running."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time

import psutil
import pytest

import nas
from nas.search.config import load_config
from nas.search.experiment import run_search


def test_table_evaluations_go_in_batches_to_ray_actors(tmp_path, write_config):
    config = load_config(write_config(tmp_path, execution={"workers": 2, "batch_size": 8}, budget={"evaluations": 40}))
    results = run_search(config, tmp_path, progress=False).store.results()
    assert len({r.arch_id for r in results}) == 40
    assert all(r.ok and r.provenance.details["ray_node"] for r in results)


@pytest.mark.parametrize("scheduler", ["asha", "fifo"])
def test_training_runs_as_tune_trials_with_early_stopping(tmp_path, write_config, digits_training, scheduler):
    execution = {"workers": 2, "scheduler": scheduler}
    config = load_config(write_config(tmp_path, **digits_training, budget={"evaluations": 8}, execution=execution))
    run = run_search(config, tmp_path, progress=False)
    results = run.store.results()
    assert len({r.arch_id for r in results}) == 8
    assert all(r.measured and 0 <= r.metrics["accuracy"] <= 1 for r in results)
    epochs = {s: {r.provenance.fidelity["epochs"] for r in results if r.status is s} for s in nas.Status}
    if scheduler == "fifo":
        assert epochs == {nas.Status.OK: {2}, nas.Status.FAILED: set(), nas.Status.PRUNED: set()}
    else:  # ASHA trains every architecture for 1 epoch and promotes some to 2: the others are pruned at 1
        assert epochs == {nas.Status.OK: {2}, nas.Status.FAILED: set(), nas.Status.PRUNED: {1}}
        front = run.pareto()
        assert set(front["fidelity"]) == {"epochs=2 fraction=0.3"}
        assert len(run.query(pareto=True, all_fidelities=True)) >= len(front)
    weights = [r.provenance.details["weights"] for r in results]
    assert all(path.startswith(str(tmp_path / "digits" / "weights")) for path in weights)


def test_ctrl_c_stops_tune_trials_and_says_how_to_resume(
    tmp_path, write_config, digits_training, wait_for_trials, spawn
):
    config = write_config(tmp_path, **digits_training, budget={"evaluations": 40}, execution={"workers": 2})
    command = [sys.executable, "-m", "nas", "search", str(config), "--out", str(tmp_path), "--no-progress"]
    process = spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_trials(tmp_path / "digits" / "store.db", 2, process)
    ray_processes = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 130, stderr
    assert not survivors(ray_processes, timeout_s=60)
    # Ray forwards its workers' output, prefixed "(_trial pid=N)": a worker interrupted while it exits may print an
    # ignored exception of its own; the search itself prints no traceback.
    own = [line for line in stderr.splitlines() if "pid=" not in line.split(")")[0]]
    assert "--resume" in stderr and not [line for line in own if "Traceback" in line]
    assert "Pareto front" not in stdout  # a stopped search is not reported as finished
    assert len(nas.load_run(tmp_path / "digits").store.results()) >= 2


def test_a_killed_search_leaves_no_ray_process(tmp_path, write_config, digits_training, wait_for_trials):
    config = write_config(tmp_path, **digits_training, budget={"evaluations": 40}, execution={"workers": 2})
    command = [sys.executable, "-m", "nas", "search", config.name, "--out", "runs", "--no-progress"]
    with (tmp_path / "output.txt").open("w") as output:
        driver = subprocess.Popen(command, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)
    ray_processes: list[psutil.Process] = []
    try:
        wait_for_trials(tmp_path / "runs" / "digits" / "store.db", 1, driver)
        ray_processes = psutil.Process(driver.pid).children(recursive=True)  # and the reaper
        assert any(p.name() == "raylet" for p in ray_processes)
        driver.kill()  # the driver alone, not its process group
        assert driver.wait(timeout=60) == -signal.SIGKILL
        alive = survivors(ray_processes, timeout_s=60)  # without the reaper, Ray's agents run on for a minute or more
        assert not alive, [p.name() for p in alive]
    finally:
        driver.kill()
        driver.wait()
        for process in ray_processes:
            with contextlib.suppress(psutil.Error):
                process.kill()


def survivors(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Those of ``processes`` still running (zombies aside: here pid 1 may not reap them) once all have ended or
    ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for process in processes:
            with contextlib.suppress(psutil.Error):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)
