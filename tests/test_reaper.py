"""The reaper (nas/testing/reaper.py) stops what a starter registered when the starter dies, and only then.

A starter process (a small Python program) launches the reaper, starts a ``sleep`` in a session of its own (as
the cluster's servers are started) and registers it; it is then killed with SIGKILL, or exits after disarming.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from nas.testing.reaper import alive

ROOT = Path(__file__).resolve().parents[1]

STARTER = textwrap.dedent("""
    import subprocess, sys, time
    from nas.testing.reaper import Reaper
    reaper = Reaper()
    child = subprocess.Popen(["sleep", "300"], start_new_session=True)
    reaper.watch(group=child.pid)
    print(child.pid, flush=True)
    if sys.argv[1] == "disarm":
        reaper.disarm()
        sys.exit(0)
    time.sleep(300)
""")


def _start(mode: str) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen([sys.executable, "-c", STARTER, mode], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def test_a_registered_group_dies_with_its_starter_after_kill_9():
    proc, child = _start("hold")
    try:
        assert alive(child)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child), "the registered process outlived its starter"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_disarmed_reaper_kills_nothing():
    proc, child = _start("disarm")
    try:
        assert proc.wait(30) == 0
        time.sleep(1.0)
        assert alive(child), "a clean starter's reaper must leave its processes to it"
    finally:
        os.kill(child, signal.SIGKILL)
