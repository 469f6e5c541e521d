"""A throwaway multi-node set-up on one machine: PostgreSQL, an MLflow tracking server, a Ray cluster.

:class:`LocalCluster` starts, in a temp directory:

- PostgreSQL (databases ``mlflow`` and ``optuna``), the MLflow server on it with ``--serve-artifacts``;
- a Ray head and ``workers`` more Ray nodes (``ray start --block``), each with its own ``--num-cpus`` and a
  custom resource ``node<i>`` (1 unit), so trials can be placed on, or counted by, node.

As root (and where ``ip netns`` works) every Ray node runs in its own network namespace with its own IP
(:mod:`nas.testing.netns`); the services listen on the bridge. The driver then runs in the head's namespace
(:meth:`LocalCluster.driver_argv`), as it would on a head machine. Elsewhere everything is on 127.0.0.1 with
free ports. The filesystem is shared by all nodes (``storage`` plays the NFS mount that Ray Tune needs).

Tear-down (``with`` block exit, ``stop()``, or at interpreter exit) kills every process this started and removes
the namespaces. When the starter dies without tearing down (``kill -9``), its reaper does
(:mod:`nas.testing.reaper`): no PostgreSQL, MLflow or Ray process outlives it by more than a few seconds.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.testing import netns
from nas.testing.reaper import Reaper
from nas.testing.reaper import descendants as _descendants
from nas.testing.services import MlflowServer, Postgres, free_port, postgres_missing

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)


@dataclass
class RayNode:
    """One ``ray start --block`` process (its own session, so all of it can be signalled)."""

    index: int
    ip: str
    cpus: float
    prefix: list[str]
    proc: subprocess.Popen | None = field(default=None, repr=False)
    node_id: str = ""

    @property
    def resource(self) -> str:
        """The custom resource only this node has (1 unit)."""
        return f"node{self.index}"

    def pids(self, net: netns.Network | None) -> list[int]:
        if net is not None:
            return net.pids(self.index)
        return _descendants(self.proc.pid) if self.proc else []


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class LocalCluster:
    """PostgreSQL + MLflow server + a Ray head and ``workers`` Ray nodes. Use as a context manager.

    ``head_cpus`` / ``worker_cpus`` are what each node advertises (``--num-cpus``; they need not match cores);
    the head offers none by default, so trials run on nodes other than the driver's.
    ``use_netns``: None = when available. ``env`` is added to every process's environment (Ray nodes and the
    driver), e.g. the MLflow client's retry settings.
    """

    def __init__(self, root: str | Path | None = None, *, workers: int = 2, head_cpus: float = 0,
                 worker_cpus: float = 1, use_netns: bool | None = None, env: dict[str, str] | None = None,
                 object_store_mb: int = 150) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="nasc-"))
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.workers, self.head_cpus, self.worker_cpus = workers, head_cpus, worker_cpus
        self.object_store_mb = object_store_mb
        why = netns.available() if use_netns in (None, True) else "not asked for"
        if use_netns and why:
            raise RuntimeError(f"network namespaces are not available: {why}")
        self.net: netns.Network | None = netns.Network(nodes=1 + workers) if why is None else None
        self.extra_env = dict(env or {})
        self.pg: Postgres | None = None
        self.mlflow: MlflowServer | None = None
        self.nodes: list[RayNode] = []
        self.ray_port = 6379
        self._stopped = False
        self.reaper: Reaper | None = None
        # the cluster's own Ray token (Ray >= 2.5x authenticates by token): not the shared ~/.ray/auth_token
        self.token_path = self.root / "ray_auth_token"
        self.token_path.write_text(secrets.token_hex(32))
        os.chmod(self.token_path, 0o600)

    # -- addresses ---------------------------------------------------------------------------------------------

    @property
    def host_ip(self) -> str:
        """Where the services listen, as seen from every node."""
        return self.net.host_ip if self.net else "127.0.0.1"

    @property
    def ray_address(self) -> str:
        return f"{self.nodes[0].ip}:{self.ray_port}"

    @property
    def tracking_uri(self) -> str:
        assert self.mlflow is not None
        return self.mlflow.uri

    def postgres_url(self, db: str = "optuna") -> str:
        assert self.pg is not None
        return self.pg.url(db, host=self.host_ip)

    @property
    def storage_path(self) -> Path:
        """Ray Tune's storage_path: a directory every node reaches (the shared filesystem here)."""
        return self.root / "storage"

    def env(self) -> dict[str, str]:
        """The environment for the Ray nodes and the driver: this checkout importable, no usage stats."""
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": "",
                "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path),
                "MLFLOW_TRACKING_URI": self.mlflow.uri if self.mlflow else "", **self.extra_env}

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> LocalCluster:
        why = postgres_missing()
        if why:
            raise RuntimeError(why)
        atexit.register(self.stop)
        self.reaper = Reaper(self.root / "reaper.log")  # kills what follows if this process dies without stop()
        # a plain SIGTERM would skip atexit and `with` exits alike: turn it into SystemExit so both run
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        if self.net is not None:
            self.net.up()
            self.reaper.watch(network=self.net.n, nodes=self.net.nodes)
        hosts = "127.0.0.1" + (f",{self.host_ip}" if self.net else "")
        t0 = time.perf_counter()
        self.reaper.watch(postgres=str(self.root / "pg" / "data"))
        self.pg = Postgres(self.root / "pg", hosts=hosts).start()
        log.info("PostgreSQL up at %s:%d (%.1f s)", self.host_ip, self.pg.port, time.perf_counter() - t0)
        t0 = time.perf_counter()
        self.mlflow = MlflowServer(self.root / "mlflow", backend=self.pg.url("mlflow"), host=self.host_ip).launch()
        assert self.mlflow.proc is not None
        self.reaper.watch(group=self.mlflow.proc.pid)
        log.info("MLflow server starting at %s (pid %d)", self.mlflow.uri, self.mlflow.proc.pid)
        self.storage_path.mkdir(exist_ok=True)
        for i in range(1 + self.workers):
            ip = self.net.ips[i] if self.net else "127.0.0.1"
            node = RayNode(i, ip, self.head_cpus if i == 0 else self.worker_cpus,
                           self.net.prefix(i) if self.net else [])
            self._start_node(node)
            self.nodes.append(node)
        self._wait_nodes()
        log.info("Ray cluster up at %s: %s (%.1f s)", self.ray_address,
                 ", ".join(f"{n.ip} ({n.cpus:g} CPU)" for n in self.nodes), time.perf_counter() - t0)
        self.mlflow.wait()
        log.info("MLflow server up at %s (%.1f s)", self.mlflow.uri, time.perf_counter() - t0)
        return self

    def _ray_argv(self, node: RayNode) -> list[str]:
        ray = Path(sys.executable).with_name("ray")
        argv = [str(ray) if ray.exists() else "ray", "start", "--block", "--disable-usage-stats",
                "--node-ip-address", node.ip, "--num-cpus", f"{node.cpus:g}", "--num-gpus", "0",
                "--resources", json.dumps({node.resource: 1}),
                "--object-store-memory", str(self.object_store_mb * 2**20),
                "--temp-dir", str(self.root / f"ray{node.index}")]  # per node, as on separate machines
        if node.index == 0:
            argv += ["--head", "--include-dashboard", "false"]
        else:
            argv += ["--address", self.ray_address]
        if self.net is None:  # every node on one IP: give each its own ports
            ports = {"--node-manager-port": free_port(), "--object-manager-port": free_port(),
                     "--metrics-export-port": free_port(), "--dashboard-agent-listen-port": free_port(),
                     "--dashboard-agent-grpc-port": free_port(), "--runtime-env-agent-port": free_port()}
            if node.index == 0:
                self.ray_port = free_port()
                ports |= {"--port": self.ray_port, "--ray-client-server-port": free_port()}
            lo = 20000 + 1000 * node.index + (os.getpid() % 20) * 2000
            ports |= {"--min-worker-port": lo, "--max-worker-port": lo + 999}
            argv += [str(x) for kv in ports.items() for x in kv]
        elif node.index == 0:
            argv += ["--port", str(self.ray_port)]
        return node.prefix + argv

    def _start_node(self, node: RayNode, tries: int = 3) -> None:
        """``ray start`` one node and wait until it runs. On a loaded machine a raylet can miss Ray's fixed 30 s
        registration window, and ``ray start`` gives up: that is retried, ``tries`` times in all."""
        cwd = self.root / f"node{node.index}"  # not the driver's working directory
        cwd.mkdir(exist_ok=True)
        log_path = self.root / f"ray-node{node.index}.log"
        for attempt in range(1, tries + 1):
            offset = log_path.stat().st_size if log_path.exists() else 0
            with open(log_path, "ab") as out:
                node.proc = subprocess.Popen(self._ray_argv(node), cwd=cwd, env=self.env(), stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            if self.reaper is not None:
                self.reaper.watch(group=node.proc.pid)
            if self._await_started(node, log_path, offset):
                return
            log.warning("Ray node %d did not start (attempt %d of %d); see %s", node.index, attempt, tries, log_path)
            self.stop_node(node)
        raise RuntimeError(f"Ray node {node.index} did not start after {tries} attempts; see {log_path}")

    @staticmethod
    def _await_started(node: RayNode, log_path: Path, offset: int, timeout_s: float = 300) -> bool:
        """True once ``ray start`` says the runtime started; False when it exits (or hangs past ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with open(log_path, "rb") as f:
                f.seek(offset)
                if b"Ray runtime started." in f.read():
                    return True
            if node.proc is None or node.proc.poll() is not None:
                return False
            time.sleep(0.5)
        return False

    def nodes_table(self) -> list[dict[str, Any]]:
        """The cluster's nodes as Ray sees them (node id, IP, alive, resources), asked from the head."""
        code = ("import json; from nas.search.backends.ray import cluster_nodes; "
                f"print(json.dumps(cluster_nodes({self.ray_address!r})))")
        out = subprocess.run(self.driver_argv([sys.executable, "-c", code]), env=self.env(), cwd=self.root,
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"could not list the Ray nodes: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def _wait_nodes(self, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            table = self.nodes_table()
            alive = {n["resources"].get(node.resource) and node.index: n for n in table if n["alive"]
                     for node in self.nodes if n["resources"].get(node.resource)}
            if len(alive) == len(self.nodes):
                for node in self.nodes:
                    node.node_id = alive[node.index]["node_id"]
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(alive)} of {len(self.nodes)} Ray nodes joined: {table}")
            time.sleep(1.0)

    def driver_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run where a driver runs: on the head node (in its namespace when there is one)."""
        return self.nodes[0].prefix + argv

    # -- faults ------------------------------------------------------------------------------------------------

    def kill_raylet(self, index: int) -> int:
        """SIGKILL node ``index``'s raylet (the node dies: its workers follow). Returns the raylet's pid."""
        pids = [p for p in self.nodes[index].pids(self.net) if _comm(p) == "raylet"]
        if not pids:
            raise RuntimeError(f"no raylet process on node {index}")
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    def stop_node(self, node: RayNode) -> None:
        """Kill every process of ``node`` (TERM, then KILL after 5 s)."""
        if self.net is not None:
            netns.kill_namespace_processes(self.net.namespaces[node.index])
        pids = node.pids(None)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if node.proc is not None:
                try:
                    node.proc.wait(5)
                except subprocess.TimeoutExpired:
                    continue
            pids = [p for p in pids if Path(f"/proc/{p}").exists()]
            if not pids:
                break

    def stop(self) -> None:
        """Tear everything down (idempotent, never raises)."""
        if self._stopped:
            return
        self._stopped = True
        for node in reversed(self.nodes):
            try:
                self.stop_node(node)
            except Exception:  # keep tearing down
                pass
        for step in (lambda: self.mlflow and self.mlflow.stop(), lambda: self.pg and self.pg.stop("immediate"),
                     lambda: self.net and self.net.down()):
            try:
                step()
            except Exception:
                pass
        if self.reaper is not None:
            self.reaper.disarm()
        try:
            atexit.unregister(self.stop)
        except Exception:
            pass

    def remove(self) -> None:
        """Delete the temp directory (after :meth:`stop`)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
