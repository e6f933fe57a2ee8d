"""`nas search --address` on a real two-node Ray cluster on this machine (with a plugin file of the user's own too),
and a clear error for a wrong address.

How the cluster is made (Ray 2.60, Linux):

- Both nodes run with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1``. The ``=0`` an embedded Ray uses (the Ray runner)
  forbids multi-node clusters: ``ray start --address`` aborts with "Multi-node Ray clusters are not supported". With
  clusters enabled, Ray turns ``127.0.0.1`` in ``--address`` and ``--node-ip-address`` into this machine's network
  address, so the nodes register under that address and the head's GCS listens on all interfaces; the driver (the
  ``nas`` CLI, which keeps its own ``=0``) still joins through ``127.0.0.1:PORT``. Nothing leaves the machine.
- Each node has its own ``--temp-dir`` (short, under /tmp: Ray's Unix sockets live there), so the two raylets and
  object stores do not collide; their other ports are Ray's random free ports. The head's address file
  (``ray_current_cluster``) goes there too, not to /tmp/ray, so the embedded Rays of tests running in parallel do
  not join this cluster.
- Teardown does not run ``ray stop --force``: that kills every Ray process of the machine, including the embedded
  Rays of tests running in parallel. Each ``ray start`` runs in a session of its own, and every process it leaves
  behind (GCS, raylet, agents, workers, actors) stays in that session, even orphaned; teardown kills exactly the
  processes of those sessions (SIGKILL, as ``ray stop --force`` does). A marker in the environment would not do:
  Ray's process titles (``ray::DashboardAgent``) overwrite what /proc/PID/environ shows.
- Each node has 1 CPU and each evaluation actor asks for 1 CPU, so the two actors land one per node.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import nas

RAY = Path(sys.executable).parent / "ray"
NAS = [sys.executable, "-m", "nas"]
NODES_TIMEOUT_S = 60.0

#: Run by a throw-away driver: wait until the cluster at argv[1] has 2 alive nodes, print their ids as JSON.
WAIT_FOR_NODES = """
import json, sys, time
import ray
ray.init(address=sys.argv[1], include_dashboard=False, logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    nodes = [n for n in ray.nodes() if n["Alive"]]
    if len(nodes) == 2 and sum(n["Resources"].get("CPU", 0) for n in nodes) == 2:
        print(json.dumps(sorted(n["NodeID"] for n in nodes)))
        sys.exit(0)
    time.sleep(0.5)
sys.exit(f"the cluster has {len(nodes)} alive nodes, not 2")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _in_sessions(sessions: set[int]) -> list[int]:
    """Processes of these sessions (Linux: field 6 of /proc/PID/stat)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # after "PID (COMMAND) "
            if fields[0] != "Z" and int(fields[3]) in sessions:
                pids.append(int(entry.name))
    return pids


def _stop(sessions: set[int]) -> None:
    deadline = time.monotonic() + 15
    while (pids := _in_sessions(sessions)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _ray(*args: str, env: dict[str, str], sessions: set[int]) -> None:
    """``ray ARGS`` in a new session, recorded in ``sessions`` for the teardown."""
    process = subprocess.Popen(
        [str(RAY), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    sessions.add(process.pid)
    try:
        output, _ = process.communicate(timeout=60)  # `ray start --address` retries an unreachable head for ever
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    assert process.returncode == 0, f"ray {' '.join(args)} failed:\n{output[-3000:]}"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[dict[str, Any]]:
    """A head and a second node, 1 CPU each, on this machine: ``{"address": "127.0.0.1:PORT", "nodes": [ids]}``."""
    if not RAY.is_file():
        _skip_or_fail(f"no ray executable at {RAY}: pip install 'nas-pareto[ray]'")
    if not sys.platform.startswith("linux"):
        pytest.skip("the cluster's teardown finds its processes through /proc (Linux)")
    temp = Path(tempfile.mkdtemp(prefix="nasray-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="1")
    sessions: set[int] = set()
    port = _free_port()
    address = f"127.0.0.1:{port}"
    try:
        _ray(
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=1",
            "--include-dashboard=false",
            f"--temp-dir={temp / 'head'}",
            env=env,
            sessions=sessions,
        )
        node = ("start", f"--address={address}", "--num-cpus=1", f"--temp-dir={temp / 'node'}")
        _ray(*node, env=env, sessions=sessions)
        waited = subprocess.run(
            [sys.executable, "-c", WAIT_FOR_NODES, address, str(NODES_TIMEOUT_S)],
            env=env,
            capture_output=True,
            text=True,
            timeout=NODES_TIMEOUT_S + 30,
        )
        assert waited.returncode == 0, waited.stderr[-2000:]
        yield {"address": address, "nodes": json.loads(waited.stdout.splitlines()[-1])}
    finally:
        _stop(sessions)
        shutil.rmtree(temp, ignore_errors=True)


def _driver_env(data_dir: Path) -> dict[str, str]:
    """A user's shell: the nas CLI sets its own Ray variables (RAY_ENVIRONMENT)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    return {**env, "NAS_DATA_DIR": str(data_dir.resolve())}


#: The search each test runs: the table evaluator (see conftest.py), random strategy.
SEARCH = {
    "strategy": {"name": "random"},
    "budget": {"evaluations": 40},
    "execution": {"workers": 2, "resources": {"cpu": 1}, "batch_size": 4},
}


def test_a_search_on_a_cluster_uses_both_nodes(tmp_path, data_dir, write_config, ray_cluster):
    config = write_config(tmp_path, name="cluster", **SEARCH)
    args = ["search", str(config), "--address", ray_cluster["address"], "--out", str(tmp_path), "--no-progress"]
    done = subprocess.run([*NAS, *args], env=_driver_env(data_dir), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = nas.load_run(tmp_path / "cluster").store.results()
    assert len(results) == 40 == len({r.arch_id for r in results})
    assert all(r.ok for r in results)
    assert {r.provenance.details["ray_node"] for r in results} == set(ray_cluster["nodes"])
    query = [*NAS, "query", str(tmp_path / "cluster"), "--pareto", "--format", "json"]
    queried = subprocess.run(query, env=_driver_env(data_dir), capture_output=True, text=True, timeout=600)
    assert queried.returncode == 0, queried.stderr
    front = json.loads(queried.stdout)
    assert front and {row["arch_id"] for row in front} <= {r.arch_id for r in results}
    assert all(row["status"] == "ok" and row["accuracy"] > 0 and row["latency:pixel3"] > 0 for row in front)


def test_a_plugin_file_reaches_the_workers_of_both_nodes(tmp_path, write_plugin, plugin_config, ray_cluster):
    """An evaluator of the user's own, in a file named by a relative path and installed nowhere: Ray ships the file to
    each node (here both on this machine, with temporary folders of their own: the workers of each node import that
    node's copy, not the user's file)."""
    plugin = write_plugin(tmp_path / "plugins" / "conv_eval.py")
    config = plugin_config("plugged", **{**SEARCH, "budget": {"evaluations": 16}})
    (tmp_path / "plugged.yaml").write_text(yaml.safe_dump(config))
    args = ["search", "plugged.yaml", "--plugin", "plugins/conv_eval.py", "--address", ray_cluster["address"]]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    env.pop("NAS_PLUGINS", None)
    done = subprocess.run(
        [*NAS, *args, "--no-progress"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = nas.ResultStore.open(f"sqlite:///{tmp_path / 'runs' / 'plugged' / 'store.db'}").results()
    assert len(results) == 16 and all(r.ok for r in results)
    assert {r.provenance.details["ray_node"] for r in results} == set(ray_cluster["nodes"])
    files = {r.provenance.details["plugin_file"] for r in results}
    assert str(plugin) not in files and {Path(f).name for f in files} == {"conv_eval.py"}
    assert len(files) == 2, files  # a copy on each node


def test_a_wrong_address_is_one_clear_line(tmp_path, data_dir, write_config):
    config = write_config(tmp_path, name="nowhere", **SEARCH)
    args = ["search", str(config), "--address", "127.0.0.1:1", "--out", str(tmp_path), "--no-progress"]
    try:
        done = subprocess.run([*NAS, *args], env=_driver_env(data_dir), capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("`nas search --address 127.0.0.1:1` hung instead of failing: ray.init retries for minutes")
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "127.0.0.1:1" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "nowhere").exists()  # refused before the run folder was created
