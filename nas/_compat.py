"""Every private third-party API nas uses, in one place, each loaded on first use.

A private name can change in any release; pyproject.toml bounds each package below its next major version, and
``tests/test_compat.py`` checks every name here against the installed versions, so an upgrade that breaks one
fails there, named, not deep inside a search. Importing this module imports none of these packages: each name is
resolved when it is first read (``from nas._compat import SqlRun`` in ``nas.tracking`` loads MLflow there, the
only package allowed to). Add a private API by adding a loader to :data:`LOADERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _optuna_get_lock_file() -> Any:
    # the lock Optuna's own JournalFileBackend.append_logs takes (optuna 4-5)
    from optuna.storages.journal._file import get_lock_file

    return get_lock_file


def _optuna_journal_operation() -> Any:
    # the op codes of Optuna's journal records (optuna 4-5): which record ends a trial
    from optuna.storages.journal._storage import JournalOperation

    return JournalOperation


def _journal_lock(backend: Any) -> Any:
    return backend._lock


def _journal_offsets(backend: Any) -> dict[int, int]:
    return backend._log_number_offset


def _mlflow_sql_models() -> Any:
    # MLflow's SQLAlchemy ORM tables, for direct batched inserts into a sqlite store (mlflow 3)
    from mlflow.store.tracking.dbmodels import models

    return models


def _mlflow_sqlalchemy_store() -> Any:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    return SqlAlchemyStore


def _mlflow_validate_batch_log_data() -> Any:
    # MLflow's own checks of a log_batch call (names, values, lengths), run before a direct insert
    from mlflow.utils.validation import _validate_batch_log_data

    return _validate_batch_log_data


def _mlflow_use_tracking_uri() -> Any:
    # a context manager that sets the global tracking URI for a block: the model registry resolves models:/ URIs
    # through it (mlflow 3)
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    return _use_tracking_uri


def _fvcore_default_ops() -> Any:
    # fvcore's table op name -> FLOP handle (fvcore 0.1.5)
    from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS

    return _DEFAULT_SUPPORTED_OPS


def _fvcore_ignored_ops() -> Any:
    # the ops fvcore counts as zero FLOPs
    from fvcore.nn.jit_analysis import _IGNORED_OPS

    return _IGNORED_OPS


def _torch_get_trace_graph() -> Any:
    # the JIT tracer fvcore itself uses (torch 2)
    from torch.jit import _get_trace_graph

    return _get_trace_graph


def _torch_autograd_device_type() -> Any:
    # the autograd profiler's device enum, read without importing torch.profiler (and torch._dynamo)
    import torch

    return torch._C._autograd.DeviceType


def _ray_actor_table() -> Any:
    # the GCS actor table (for debugging, per Ray): a dead actor's node id and IP (ray 2)
    from ray._private.state import actors

    return actors


def _sql_model(name: str) -> Callable[[], Any]:
    return lambda: getattr(_mlflow_sql_models(), name)


#: public name here -> loader of the private object
LOADERS: dict[str, Callable[[], Any]] = {
    "get_lock_file": _optuna_get_lock_file,
    "JournalOperation": _optuna_journal_operation,
    # JournalFileBackend's private attributes (optuna 4-5): the lock its append takes, and its cache of record
    # number -> byte offset (entries past a truncation must be dropped)
    "journal_lock": lambda: _journal_lock,
    "journal_offsets": lambda: _journal_offsets,
    "SqlAlchemyStore": _mlflow_sqlalchemy_store,
    "validate_batch_log_data": _mlflow_validate_batch_log_data,
    "use_tracking_uri": _mlflow_use_tracking_uri,
    **{n: _sql_model(n) for n in ("SqlExperiment", "SqlLatestMetric", "SqlMetric", "SqlParam", "SqlRun", "SqlTag")},
    "FVCORE_DEFAULT_OPS": _fvcore_default_ops,
    "FVCORE_IGNORED_OPS": _fvcore_ignored_ops,
    "get_trace_graph": _torch_get_trace_graph,
    "AutogradDeviceType": _torch_autograd_device_type,
    "ray_actor_table": _ray_actor_table,
}

__all__ = sorted(LOADERS)


def __getattr__(name: str) -> Any:
    if name in LOADERS:
        return LOADERS[name]()
    raise AttributeError(f"module 'nas._compat' has no attribute {name!r}")
