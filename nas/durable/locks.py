"""Cross-process locks around the first use of a file-backed store.

Two searches started together against the same new sqlite file (MLflow's or Optuna's) would both run its schema
migration and one would fail; holding ``<db>.lock`` while a process opens the store serializes that step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock


@contextlib.contextmanager
def store_lock(uri: str | None, timeout_s: float = 120.0) -> Iterator[None]:
    """Hold a lock beside a ``sqlite:///`` database for the duration; no-op for other URIs."""
    if not uri or not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri[len("sqlite:///"):]).expanduser().resolve()
    with FileLock(str(db) + ".lock", timeout=timeout_s):
        yield
