"""Where the Optuna study lives: an RDB URL as is, any other string a journal file, None in memory.

A journal file is :class:`nas.durable.journal.DurableJournalFile`: Optuna's file backend, appending under its lock
and flushed at every append (a ``kill -9`` of the driver loses nothing), reading past a torn final record and
cutting it before the next append, fsynced when a trial finishes (README, "Never losing a search").
:func:`journal_backend` is the one place that builds it.
"""

from __future__ import annotations

import os

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend

from nas.durable.journal import SYNC_POLICIES, DurableJournalFile
from nas.durable.rdb import open_rdb
from nas.errors import ConfigError

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
    """The journal backend of a study kept in the file ``path`` (see the module docstring). The environment
    variable ``NAS_JOURNAL_SYNC`` (``trial``, the default; ``always``; ``never``) sets when it fsyncs."""
    sync = os.environ.get("NAS_JOURNAL_SYNC", "trial")
    if sync not in SYNC_POLICIES:
        raise ConfigError("NAS_JOURNAL_SYNC", "", f"unknown journal sync policy {sync!r}",
                          f"use one of {', '.join(SYNC_POLICIES)}")
    return DurableJournalFile(path, sync=sync)  # type: ignore[arg-type]
