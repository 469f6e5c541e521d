"""Linux network namespaces joined by a bridge: one IP address per simulated machine (root only).

:class:`Network` makes a bridge ``nasbr<N>`` holding ``10.251.<N>.1/24`` in the root namespace (where the
services listen) and one namespace ``nas<N>-<i>`` per node with ``10.251.<N>.<i+2>`` on a veth pair. Only the
addresses and links created here are touched; ``N`` is the first free subnet. A process started through
:meth:`Network.prefix` sees its own IP and loopback, so anything that silently assumes the driver's localhost
fails as it would on two machines (the filesystem stays shared, as NFS would be).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.251"
STATE_DIR = Path("/tmp/nas-netns")  # one JSON per network: its owner pid, for sweeping what a killed owner left


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def available() -> str | None:
    """None when network namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    probe = f"nasprobe{os.getpid()}"
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"`ip netns add` failed: {r.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _pids_in(ns: str) -> list[int]:
    r = _ip("netns", "pids", ns, check=False)
    return [int(p) for p in r.stdout.split()] if r.returncode == 0 else []


def kill_namespace_processes(ns: str, grace_s: float = 5.0) -> None:
    """SIGTERM every process in namespace ``ns``, then SIGKILL what is left after ``grace_s`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _pids_in(ns):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 2.0)
        while _pids_in(ns) and time.monotonic() < deadline:
            time.sleep(0.1)


@dataclass
class Network:
    """A bridge and ``nodes`` namespaces; ``host_ip`` is the bridge's address, ``ips[i]`` node i's."""

    nodes: int
    n: int = -1
    namespaces: list[str] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"nasbr{self.n}"

    @property
    def host_ip(self) -> str:
        return f"{SUBNET}.{self.n}.1"

    @property
    def ips(self) -> list[str]:
        return [f"{SUBNET}.{self.n}.{i + 2}" for i in range(self.nodes)]

    def prefix(self, i: int) -> list[str]:
        """The argv prefix that runs a command inside node ``i``'s namespace."""
        return ["ip", "netns", "exec", self.namespaces[i]]

    def pids(self, i: int) -> list[int]:
        return _pids_in(self.namespaces[i])

    def up(self) -> Network:
        sweep_stale()
        used = _ip("-4", "-o", "addr").stdout
        for n in range(1, 255):
            if f" {SUBNET}.{n}." in used or _ip("link", "add", f"nasbr{n}", "type", "bridge", check=False).returncode:
                continue
            self.n = n
            break
        else:
            raise RuntimeError(f"no free {SUBNET}.N.0/24 subnet for a test network")
        STATE_DIR.mkdir(exist_ok=True)
        self._state().write_text(json.dumps({"owner": os.getpid(), "nodes": self.nodes}))
        try:
            _ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i, ip in enumerate(self.ips):
                ns, host_end, ns_end = f"nas{self.n}-{i}", f"nasv{self.n}h{i}", f"nasv{self.n}n{i}"
                _ip("netns", "add", ns)
                self.namespaces.append(ns)
                _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
                _ip("link", "set", ns_end, "netns", ns)
                _ip("link", "set", host_end, "master", self.bridge, "up")
                _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", ns_end)
                _ip("-n", ns, "link", "set", ns_end, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Kill every process left in the namespaces, then delete them and the bridge (idempotent)."""
        for ns in self.namespaces:
            kill_namespace_processes(ns)
            _ip("netns", "del", ns, check=False)
        self.namespaces = []
        if self.n >= 0:
            _ip("link", "del", self.bridge, check=False)
            self._state().unlink(missing_ok=True)

    def _state(self) -> Path:
        return STATE_DIR / f"{self.n}.json"


def sweep_stale() -> None:
    """Remove the networks whose owner process is gone (it was killed before it could tear down)."""
    if not STATE_DIR.is_dir():
        return
    for f in STATE_DIR.glob("*.json"):
        try:
            state = json.loads(f.read_text())
            os.kill(int(state["owner"]), 0)
            continue  # owner alive
        except ProcessLookupError:
            pass
        except (OSError, ValueError, KeyError):
            continue
        net = Network(nodes=int(state["nodes"]), n=int(f.stem))
        net.namespaces = [f"nas{net.n}-{i}" for i in range(net.nodes)]
        net.down()
