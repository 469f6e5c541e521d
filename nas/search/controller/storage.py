"""Where the Optuna study lives: an RDB URL as is, any other string a journal file, None in memory.

The journal is written under Optuna's file lock (safe for several processes) and flushed to the OS at every
append, without Optuna's per-append ``fsync``: it survives the death of any process (a ``kill -9`` of the driver
loses nothing) but not a power cut, the same guarantee as the tracking store's WAL mode. That takes the study's
cost from ~31 to a few ms per trial (docs/DESIGN.md). :func:`journal_backend` is the one place that builds it.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend, JournalFileBackend

from nas._compat import get_lock_file  # the lock Optuna's own append takes (a private API)
from nas.durable.rdb import open_rdb

Storage = str | optuna.storages.BaseStorage | None


def open_storage(storage: Storage) -> Storage:
    """An Optuna storage from ``search.storage``: an RDB URL (``scheme://...``) or a storage object as is, any
    other string as a journal file path (:func:`journal_backend`), None (in memory) as is."""
    if isinstance(storage, str) and "://" in storage and not storage.startswith("sqlite"):
        return open_rdb(storage)  # a database server: a restart of it is ridden out (nas/durable/rdb.py)
    if storage is None or not isinstance(storage, str) or "://" in storage:
        return storage
    return JournalStorage(journal_backend(storage))


def journal_backend(path: str) -> BaseJournalBackend:
    """The journal backend of a study kept in the file ``path`` (see the module docstring)."""
    return _FlushedJournalFile(path)


class _FlushedJournalFile(JournalFileBackend):
    """Optuna's journal file backend, appending under its lock, flushed but not fsynced (see the module)."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with get_lock_file(self._lock), open(self._file_path, "ab") as f:
            f.write(text.encode("utf-8"))
            f.flush()
