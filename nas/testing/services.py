"""Throwaway PostgreSQL and MLflow tracking servers in a temp directory (real binaries, no fakes).

PostgreSQL comes from the system (``initdb``, ``pg_ctl``: Debian's ``postgresql`` package). It refuses to run as
root, so as root its files belong to, and it runs as, an unprivileged user (``postgres`` when it exists, else
``nobody``). Authentication is ``trust`` on the addresses it listens at: this is a test server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PG_INSTALL_HINT = ("install PostgreSQL (15 or later) so that `initdb` and `pg_ctl` are on PATH: `apt-get install "
                   "postgresql` (then add /usr/lib/postgresql/*/bin to PATH), `brew install postgresql`, or "
                   "`conda install -c conda-forge postgresql`")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).is_file():
            return str(d / name)
    return None


def postgres_missing() -> str | None:
    """None when the PostgreSQL server binaries are here, else a message saying how to install them."""
    missing = [b for b in ("initdb", "pg_ctl", "postgres") if _pg_bin(b) is None]
    return f"PostgreSQL binaries not found ({', '.join(missing)}): {PG_INSTALL_HINT}" if missing else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before listening at {host}:{port}")
        try:
            socket.create_connection((host, port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens at {host}:{port} after {timeout_s:.0f} s")


def _run_as() -> list[str]:
    """argv prefix that drops root (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
            return ["runuser", "-u", user, "--"]
        except KeyError:
            continue
    raise RuntimeError("running as root with neither a `postgres` nor a `nobody` user to run PostgreSQL as")


@dataclass
class Postgres:
    """One PostgreSQL server: data in ``root``, listening at ``hosts`` (comma-separated) on ``port``."""

    root: Path
    hosts: str = "127.0.0.1"
    port: int = 0
    user: str = "nas"
    databases: tuple[str, ...] = ("mlflow", "optuna")

    def url(self, db: str, host: str | None = None) -> str:
        """SQLAlchemy URL of database ``db`` (reached at ``host``, default the first listen address)."""
        return f"postgresql://{self.user}@{host or self.hosts.split(',')[0]}:{self.port}/{db}"

    def _pg(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        exe = _pg_bin(name)
        if exe is None:
            raise RuntimeError(postgres_missing())
        r = subprocess.run([*_run_as(), exe, *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
        return r

    def start(self) -> Postgres:
        """initdb (first time), start, create the databases (first time). Blocks until it accepts connections."""
        data, sock = self.root / "data", self.root / "sock"
        fresh = not data.exists()
        if fresh:
            self.root.mkdir(parents=True, exist_ok=True)
            data.mkdir()
            sock.mkdir()
            if os.geteuid() == 0:
                owner = _run_as()[2]
                os.chmod(self.root, 0o755)
                shutil.chown(data, owner)
                shutil.chown(sock, owner)
            self._pg("initdb", "-D", str(data), "-A", "trust", "-U", self.user, "-E", "UTF8", "--no-sync")
            with open(data / "pg_hba.conf", "a") as f:  # trust the test network too (a throwaway server)
                f.write("host all all 0.0.0.0/0 trust\n")
        self.port = self.port or free_port()
        # fsync off: a throwaway server; a restart (pg_ctl restart, fast mode) still loses no committed row
        opts = f"-p {self.port} -k {sock} -c listen_addresses={self.hosts} -c fsync=off -c max_connections=200"
        self._pg("pg_ctl", "-D", str(data), "-l", str(data / "postgres.log"), "-o", opts, "-w", "-t", "60", "start")
        if fresh:
            for db in self.databases:
                self._pg("createdb", "-h", str(sock), "-p", str(self.port), "-U", self.user, db)
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (fast: open connections are cut), stay down ``down_s`` seconds, start again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()


@dataclass
class MlflowServer:
    """``mlflow server`` on ``backend`` (a database URL) with ``--serve-artifacts`` into ``root/artifacts``."""

    root: Path
    backend: str
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 300.0) -> MlflowServer:
        """Launch and wait until healthy (the first start on an empty database runs its migrations: ~1 min)."""
        return self.launch().wait(timeout_s)

    def launch(self) -> MlflowServer:
        """Start the server process; :meth:`wait` for it."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        mlflow = Path(sys.executable).with_name("mlflow")
        argv = [str(mlflow) if mlflow.exists() else "mlflow", "server", "--backend-store-uri", self.backend,
                "--serve-artifacts", "--artifacts-destination", (self.root / "artifacts").as_uri(),
                "--host", self.host, "--port", str(self.port), "--workers", "1",
                "--allowed-hosts", "*"]  # clients reach it by the bridge's IP, not localhost
        log = open(self.root / "mlflow-server.log", "ab")  # noqa: SIM115 (the server owns it while it runs)
        # nas runs no MLflow server jobs: without them the server does not start its ~8 huey worker processes
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=self.root, env=env)
        log.close()
        return self

    def wait(self, timeout_s: float = 300.0) -> MlflowServer:
        """Block until ``/health`` answers 200."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                tail = (self.root / "mlflow-server.log").read_text()[-3000:]
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow server not healthy at {self.uri} after {timeout_s:.0f} s")
            time.sleep(0.5)

    def stop(self) -> None:
        """Terminate the server and its workers (its own process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, 15)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, 9)
            self.proc.wait(10)
        try:  # uvicorn workers left behind after their parent went
            os.killpg(pgid, 9)
        except ProcessLookupError:
            pass
