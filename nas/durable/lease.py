"""One driver per run: an exclusive lease held by the live driver, beside the run's local journal.

The lease is an OS file lock (``flock``) on ``<journal>.lease``: the kernel drops it when its process dies, so a
dead driver's lease expires at once and a ``kill -9`` never leaves a run locked. The holder (host, pid, start
time) is written into the file so a refused second driver can name it. Studies in an RDB (``search.storage``) get
no lease: there, running one driver per run is the user's responsibility (README).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout


class LeaseHeldError(RuntimeError):
    """Another live driver holds the run; ``holder`` describes it (host, pid, since)."""

    def __init__(self, path: str, holder: dict[str, object]) -> None:
        self.path, self.holder = path, holder
        super().__init__(f"another driver holds {path}: " + ", ".join(f"{k} {v}" for k, v in holder.items()))


class DriverLease:
    """``with DriverLease(journal_path):`` holds the run's lease or raises :class:`LeaseHeldError` at once."""

    def __init__(self, journal_path: str | Path) -> None:
        self.path = Path(str(journal_path) + ".lease")
        self._lock = FileLock(str(self.path), timeout=0)  # flock: released by the kernel when the process dies

    def holder(self) -> dict[str, object]:
        """Who holds (or last held) the lease, as the holder wrote it; {} when unknown."""
        try:
            return dict(json.loads(self.path.with_suffix(self.path.suffix + ".holder").read_text()))
        except (OSError, ValueError):
            return {}

    def acquire(self) -> DriverLease:
        try:
            self._lock.acquire()
        except Timeout:
            raise LeaseHeldError(str(self.path), self.holder() or {"holder": "unknown"}) from None
        me = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.path.with_suffix(self.path.suffix + ".holder").write_text(json.dumps(me))
        return self

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> DriverLease:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
