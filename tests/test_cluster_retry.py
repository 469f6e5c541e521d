"""Retries that let a search ride out a server outage: the tracking writer's back-off (unit, fakes) and the
Optuna storage on a real PostgreSQL that goes down and comes back (slow; skipped without PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
)

from nas.testing.services import postgres_missing
from nas.tracking.retry import call_with_retry, is_transient


class Flaky:
    """Fails ``n`` times with ``error``, then returns its call count."""

    def __init__(self, n: int, error: BaseException) -> None:
        self.n, self.error, self.calls = n, error, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.n:
            raise self.error
        return self.calls


def test_transient_errors_are_retried_with_growing_waits():
    waits: list[float] = []
    fn = Flaky(3, MlflowException("API request failed: connection refused", error_code=TEMPORARILY_UNAVAILABLE))
    assert call_with_retry(fn, deadline_s=10, first_wait_s=0.01, on_retry=lambda e, w: waits.append(w)) == 4
    assert waits == [0.01, 0.02, 0.04]


def test_a_bad_request_is_not_retried():
    fn = Flaky(1, MlflowException("bad param", error_code=INVALID_PARAMETER_VALUE))
    with pytest.raises(MlflowException):
        call_with_retry(fn, deadline_s=10, first_wait_s=0.01)
    assert fn.calls == 1


def test_retries_stop_at_the_deadline():
    fn = Flaky(1000, ConnectionError("refused"))
    t0 = time.monotonic()
    with pytest.raises(ConnectionError):
        call_with_retry(fn, deadline_s=0.3, first_wait_s=0.05, max_wait_s=0.05)
    assert time.monotonic() - t0 < 1.0 and 3 <= fn.calls <= 8


def test_what_counts_as_transient():
    import requests

    assert is_transient(requests.exceptions.ConnectionError("refused"))
    assert is_transient(MlflowException("x", error_code=INTERNAL_ERROR))
    assert not is_transient(ValueError("x"))
    assert not is_transient(MlflowException("x", error_code=RESOURCE_DOES_NOT_EXIST))


@pytest.mark.slow
@pytest.mark.skipif(postgres_missing() is not None, reason=postgres_missing() or "")
def test_optuna_storage_rides_out_a_postgresql_restart():
    import shutil
    import tempfile
    from pathlib import Path

    import optuna

    from nas.durable.rdb import RetryingRDBStorage
    from nas.testing.services import Postgres

    root = Path(tempfile.mkdtemp(prefix="nas-pg-"))  # not pytest's tmp_path: PostgreSQL's user must reach it
    root.chmod(0o755)
    pg = Postgres(root / "pg").start()
    try:
        storage = RetryingRDBStorage(pg.url("optuna"))
        study = optuna.create_study(storage=storage, study_name="s", directions=["maximize"])
        study.tell(study.ask(), 1.0)
        t0 = time.monotonic()
        for call in ("ask", "suggest", "tell"):  # each made while the database is down, back 3 s later
            pg.stop()
            threading.Timer(3.0, pg.start).start()
            if call == "ask":
                trial = study.ask()
            elif call == "suggest":
                x = trial.suggest_int("x", 0, 9)
            else:
                study.tell(trial, 2.0)
        assert time.monotonic() - t0 >= 6.0 and storage.retries >= 3
        trials = optuna.load_study(study_name="s", storage=pg.url("optuna")).trials
        assert [t.value for t in trials] == [1.0, 2.0] and trials[1].params == {"x": x}  # nothing lost or twice
    finally:
        time.sleep(0.5)
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
