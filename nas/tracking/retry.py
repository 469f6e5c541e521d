"""Retry tracking-server writes through an outage: exponential back-off, bounded, counted.

The MLflow client already retries each HTTP request a few times (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``); a server
that is down for longer (restarted, its database restarting) still fails the write. The search's writer thread
then calls again with back-off until ``deadline_s`` has passed, so an outage of a few minutes loses nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)
T = TypeVar("T")

#: MLflow error codes that say "try again": the server or its database was unreachable or busy.
TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"}


def is_transient(e: BaseException) -> bool:
    """An outage (connection refused, timeout, 5xx after the client's own retries), not a bad request."""
    if isinstance(e, MlflowException):
        return e.error_code in TRANSIENT_CODES
    try:
        import requests
    except ImportError:  # pragma: no cover (MLflow depends on requests)
        return isinstance(e, (ConnectionError, TimeoutError))
    return isinstance(e, (ConnectionError, TimeoutError, requests.exceptions.ConnectionError,
                          requests.exceptions.Timeout))


def default_deadline_s() -> float:
    """``NAS_TRACKING_RETRY_S`` (seconds), default 300: how long one write may keep retrying."""
    return float(os.environ.get("NAS_TRACKING_RETRY_S", "300"))


def call_with_retry(fn: Callable[..., T], *args: Any, deadline_s: float | None = None, first_wait_s: float = 0.5,
                    max_wait_s: float = 15.0, on_retry: Callable[[BaseException, float], None] | None = None) -> T:
    """``fn(*args)``; on a transient error wait (0.5 s, doubling, at most ``max_wait_s``) and call again until
    ``deadline_s`` seconds have passed, then raise the last error. ``on_retry(error, wait_s)`` is told each time."""
    deadline = time.monotonic() + (default_deadline_s() if deadline_s is None else deadline_s)
    wait = first_wait_s
    while True:
        try:
            return fn(*args)
        except Exception as e:
            if not is_transient(e) or time.monotonic() + wait > deadline:
                raise
            if on_retry is not None:
                on_retry(e, wait)
            log.warning("tracking write failed (%s); retrying in %.1f s", str(e).splitlines()[0][:200], wait)
            time.sleep(wait)
            wait = min(max_wait_s, wait * 2)
