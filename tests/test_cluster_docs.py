"""docs/CLUSTER.md's commands for the throwaway cluster are the ones scripts/cluster.py takes, run as shown.

The block fenced as ```` ```sh test ```` in docs/CLUSTER.md is read here. Every ``python scripts/cluster.py``
line must parse with the script's own parser, and its ``--help`` runs; ``check`` runs as written; a ``make``
line must be a Makefile target that runs one of the script's commands shown. The slow test runs ``up`` exactly
as written, waits until the servers answer at the addresses it prints, kills it with SIGKILL, and asserts that
no process of that run (PostgreSQL, the MLflow server, Ray) outlives it by more than a few seconds.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from nas.testing.reaper import alive
from nas.testing.services import postgres_missing

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "CLUSTER.md"
SCRIPT = "scripts/cluster.py"
REAP_S = 15.0  # the reaper's grace is 5 s; the rest is for a loaded machine


def doc_commands() -> list[list[str]]:
    """The command lines of docs/CLUSTER.md's ```` ```sh test ```` blocks (comments dropped)."""
    blocks = re.findall(r"^```sh test\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
    return [argv for block in blocks for line in block.splitlines() if (argv := shlex.split(line, comments=True))]


def script_commands() -> list[list[str]]:
    """The ``python scripts/cluster.py ...`` lines, as argument lists for the script."""
    return [argv[2:] for argv in doc_commands() if argv[:2] == ["python", SCRIPT]]


def _parser() -> Any:
    spec = importlib.util.spec_from_file_location("cluster_script", ROOT / SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_parser()


def _run_script(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_every_command_the_docs_show_is_one_the_script_takes():
    commands = doc_commands()
    assert commands, f"{DOC} has no ```sh test block"
    parser = _parser()
    shown = set()
    for argv in commands:
        line = shlex.join(argv)
        if argv[:2] == ["python", SCRIPT]:
            try:
                args = parser.parse_args(argv[2:])
            except SystemExit:
                pytest.fail(f"{DOC.name} shows `{line}`, which {SCRIPT} refuses")
            shown.add(args.cmd)
        elif argv[0] == "make" and len(argv) == 2:
            recipe = re.search(rf"^{re.escape(argv[1])}:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
            assert recipe, f"{DOC.name} shows `{line}`, but the Makefile has no target {argv[1]}"
            runs = [shlex.split(r.strip())[1:] for r in recipe.group(1).splitlines() if SCRIPT in r]
            assert runs and all(parser.parse_args(r[1:]).cmd for r in runs), (line, recipe.group(1))
        else:
            pytest.fail(f"{DOC.name}: `{line}` in a tested block is neither {SCRIPT} nor a make target")
    assert {"check", "up", "demo"} <= shown, shown


def test_check_and_help_run_as_shown():
    for args in script_commands():
        r = _run_script([args[0], "--help"])
        assert r.returncode == 0 and "usage:" in r.stdout, (args, r.stderr[-2000:])
        if args == ["check"]:
            r = _run_script(args)
            if postgres_missing() is None:
                assert r.returncode == 0, r.stderr[-2000:]
                assert re.search(r"^initdb: +/", r.stdout, re.M), r.stdout
            else:  # says how to install PostgreSQL, exit 2
                assert r.returncode == 2 and "install PostgreSQL" in r.stderr, (r.returncode, r.stderr[-2000:])


# ---- `up`, as shown, then kill -9: nothing it started may outlive it ----------------------------------------------

def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _processes_of(root: str) -> dict[int, str]:
    """Live processes whose command line names the run's temp dir (PostgreSQL, the MLflow server, Ray)."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            cmd = _cmdline(int(d.name))
            if root in cmd and alive(int(d.name)):
                out[int(d.name)] = cmd
    return out


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    q: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            q.put(line)
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(postgres_missing() is not None, reason=postgres_missing() or "")
def test_up_as_shown_then_kill_9_leaves_no_server():
    [args] = [a for a in script_commands() if a[0] == "up"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen([sys.executable, SCRIPT, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines, printed, seen = _lines(proc), {}, []
    root = ""
    try:
        deadline = time.monotonic() + 600
        while "Ctrl-C" not in "".join(seen[-1:]):
            line = lines.get(timeout=max(1.0, deadline - time.monotonic()))
            assert line is not None, "`up` ended before its servers were up:\n" + "".join(seen[-60:])
            seen.append(line)
            key, sep, value = line.partition(": ")
            if sep and key.strip() in ("temp dir", "ray address", "tracking uri", "optuna storage"):
                printed[key.strip()] = value.strip()
        root = printed["temp dir"]
        # the addresses it prints answer
        with urllib.request.urlopen(printed["tracking uri"] + "/health", timeout=10) as r:
            assert r.status == 200
        host, port = printed["ray address"].rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=10).close()
        pg = re.match(r"postgresql://[^@]+@([^:/]+):(\d+)/", printed["optuna storage"])
        assert pg, printed
        socket.create_connection((pg.group(1), int(pg.group(2))), timeout=10).close()
        namespace = re.search(r"ip netns exec (\S+)", "".join(seen))

        before = _processes_of(root)
        kinds = " ".join(before.values())
        assert "postgres" in kinds and "mlflow" in kinds and "raylet" in kinds, before

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        t0 = time.monotonic()
        while (left := {p: c for p, c in {**before, **_processes_of(root)}.items() if alive(p)}) and \
                time.monotonic() - t0 < REAP_S:
            time.sleep(0.25)
        assert not left, f"{len(left)} processes outlived `up` by {REAP_S:g} s: " + "; ".join(
            c[:150] for c in left.values())
        if namespace:  # its network namespaces went with it (the reaper removes them after the processes)
            def listed() -> bool:
                return namespace.group(1) in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                            text=True).stdout
            while listed() and time.monotonic() - t0 < REAP_S:
                time.sleep(0.25)
            assert not listed(), f"namespace {namespace.group(1)} outlived `up` by {REAP_S:g} s"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if root:
            for pid in _processes_of(root):  # what this test started, should the reaper have failed
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            shutil.rmtree(root, ignore_errors=True)  # `up` made it; killed, it could not remove it
