"""An Optuna RDB storage that rides out a database restart: stale connections are tested before use, and a call
that fails because the server is down is made again with back-off (bounded), instead of ending the search.

``open_rdb(url)`` is what ``search.storage: postgresql://...`` (or any non-sqlite RDB URL) opens.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy.exc
from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage

log = logging.getLogger(__name__)

#: The storage calls a search makes; each is retried as a whole (one transaction each in Optuna).
_RETRIED = ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
            "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
            "get_study_system_attrs", "get_trial_user_attrs", "get_trial_system_attrs", "get_all_studies",
            "create_new_trial", "set_trial_param", "get_trial_param", "set_trial_state_values",
            "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
            "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "_get_trials", "get_best_trial",
            "record_heartbeat", "_get_stale_trial_ids",
            # what Optuna's cache layer (wrapped around every RDB storage) calls directly
            "_create_new_trial", "_set_trial_param", "_get_best_trial_id")
_TRANSIENT = (StorageInternalError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


def _retrying(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        deadline, wait = time.monotonic() + self.retry_s, 0.5
        while True:
            try:
                return fn(self, *args, **kwargs)
            except _TRANSIENT as e:
                if time.monotonic() + wait > deadline:
                    raise
                self.retries += 1
                log.warning("Optuna storage call %s failed (%s); retrying in %.1f s", name,
                            str(e).splitlines()[0][:200], wait)
                time.sleep(wait)
                wait = min(10.0, wait * 2)
    return call


class RetryingRDBStorage(RDBStorage):
    """:class:`optuna.storages.RDBStorage` with ``pool_pre_ping`` and calls retried for ``retry_s`` seconds
    (``NAS_STORAGE_RETRY_S``, default 300) while the database is unreachable; ``retries`` counts them."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.retries = 0
        self.retry_s = float(os.environ.get("NAS_STORAGE_RETRY_S", "300"))
        engine_kwargs = {"pool_pre_ping": True, **kwargs.pop("engine_kwargs", {})}
        super().__init__(url, engine_kwargs=engine_kwargs, **kwargs)


for _name in _RETRIED:
    setattr(RetryingRDBStorage, _name, _retrying(_name, getattr(RDBStorage, _name)))


def open_rdb(url: str) -> RDBStorage:
    """The RDB storage for ``url``: a retrying one for a database server; sqlite (a local file) as Optuna has it."""
    if url.startswith("sqlite"):
        return RDBStorage(url)
    return RetryingRDBStorage(url)
