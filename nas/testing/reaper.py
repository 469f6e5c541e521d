"""The reaper: what a :class:`~nas.testing.cluster.LocalCluster` starts dies with it, even after ``kill -9``.

PostgreSQL (``pg_ctl`` daemonizes it), the MLflow server and the Ray nodes run in sessions of their own, so the
death of their starter kills none of them, and ``atexit`` or a ``with`` block never run after ``kill -9``.
``prctl(PR_SET_PDEATHSIG)`` would not do either: it is cleared in the child of a fork (``pg_ctl`` forks the
postmaster) and when a process changes user (``runuser``, as root).

So the starter first launches this module as a process of its own (its own session: a Ctrl-C in the terminal
does not reach it), holding the only write end of its stdin. Each service is registered on that pipe as a JSON
line as it starts. When the pipe closes without a ``{"disarm": true}`` line, the starter is gone however it
died: the reaper kills everything registered, last registered first, and exits. A clean tear-down disarms it.

    reaper = Reaper()                       # in the starter, before anything else starts
    reaper.watch(postgres="/tmp/x/pg/data")  # the postmaster in postmaster.pid: SIGQUIT, then SIGKILL
    reaper.watch(group=proc.pid)            # proc's process group and its descendants: SIGTERM, then SIGKILL
    reaper.watch(network=3, nodes=2)        # nas.testing.netns network 3: its namespaces' processes, links
    reaper.disarm()                         # after the starter's own tear-down
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 5.0  # after SIGTERM (SIGQUIT for PostgreSQL), before SIGKILL


def _stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state, ppid, pgrp, ...); None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _table() -> dict[int, list[str]]:
    """Every live process's :func:`_stat` fields, by pid."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (fields := _stat(d.name)) is not None and len(fields) > 2:
            out[int(d.name)] = fields
    return out


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for p, fields in _table().items():
        children.setdefault(int(fields[1]), []).append(p)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (from /proc)."""
    return [p for p, fields in _table().items() if int(fields[2]) == pgid]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has exited; only its parent's wait is missing)."""
    fields = _stat(pid)
    return fields is not None and bool(fields) and fields[0] != "Z"


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _targets(action: dict[str, Any]) -> tuple[list[int], int]:
    """The processes one registration names, and the signal that asks them to stop."""
    if "group" in action:
        pid = int(action["group"])
        return sorted(set(descendants(pid)) | set(_group(pid))), signal.SIGTERM
    if "postgres" in action:
        try:
            pid = int(Path(action["postgres"], "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return [], signal.SIGQUIT  # never started, or stopped cleanly
        return sorted(set(descendants(pid)) | set(_group(pid))), signal.SIGQUIT  # PostgreSQL's immediate shutdown
    return [], signal.SIGTERM


def reap(actions: list[dict[str, Any]], grace_s: float = GRACE_S) -> None:
    """Stop everything registered at once: each its stop signal, SIGKILL for what is left after ``grace_s``
    seconds; then remove the networks (their namespaces' last processes with them)."""
    pids: list[int] = []
    for action in reversed(actions):  # last registered first
        found, sig = _targets(action)
        _signal_all(found, sig)
        pids += found
    deadline = time.monotonic() + grace_s
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal_all([p for p in pids if alive(p)], signal.SIGKILL)
    for action in reversed(actions):
        if "network" in action:
            from nas.testing.netns import Network

            net = Network(nodes=int(action["nodes"]), n=int(action["network"]))
            net.namespaces = [f"nas{net.n}-{i}" for i in range(net.nodes)]
            try:
                net.down()
            except Exception as e:  # keep going: the other networks
                sys.stderr.write(f"reaper: network {net.n}: {e}\n")


def main() -> int:
    """Read registrations from stdin until it closes; then reap them, unless disarmed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    actions: list[dict[str, Any]] = []
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("disarm"):
            return 0
        actions.append(msg)
    reap(actions)
    return 0


class Reaper:
    """The starter's end: launches the reaper process, registers what to kill, disarms it after a clean stop."""

    def __init__(self, log_path: Path | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", ""))
                                                           if p)}
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (the reaper owns it)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "nas.testing.reaper"], stdin=subprocess.PIPE,
                                         stdout=out, stderr=out, env=env, start_new_session=True, cwd=ROOT)
        finally:
            if log_path:
                out.close()  # type: ignore[union-attr]

    def watch(self, **what: Any) -> None:
        """Register one thing to kill if the starter dies: ``group=PID``, ``postgres=DATA_DIR`` or
        ``network=N, nodes=K``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(what) + "\n").encode())
        self.proc.stdin.flush()

    def disarm(self) -> None:
        """The starter tore everything down itself: the reaper exits without killing anything."""
        if self.proc.stdin is None or self.proc.stdin.closed:
            return
        try:
            self.proc.stdin.write(b'{"disarm": true}\n')
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


if __name__ == "__main__":
    sys.exit(main())
