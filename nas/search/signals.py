"""SIGINT and SIGTERM during a search: the first stops it gracefully, a second one at once.

Graceful: the loop proposes no new trial and the backend ends its run; the trials in flight are then recorded as
interrupted (child runs included) and the parent run ends KILLED with ``nas.stop_reason: interrupted``. At once:
``KeyboardInterrupt`` is raised in the driver; the parent is still marked KILLED and the trials in flight stay
RUNNING in the study, which ``--resume`` marks interrupted. Either way the search is resumable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger(__name__)

_BACKEND_STOP = getattr(signal, "SIGUSR1", None)  # Ray Tune ends its run loop on SIGUSR1 (and SIGINT)


class _Stoppable(Protocol):
    state: Any


class GracefulStop:
    """Installs the handlers for a block (main thread only; elsewhere it does nothing); ``signum`` is the first
    signal received, or None."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.last: int | None = None  # the latest signal (the second one, after a stop at once)
        self.run_id: str | None = None  # the run being driven, once it exists
        self.loop: _Stoppable | None = None  # the search loop, once trials run
        self.finishing = False  # set once the trials are over (a first signal then lets the last step finish)
        self.late: int | None = None  # a signal that came after the trials were over

    @contextlib.contextmanager
    def installed(self) -> Iterator[GracefulStop]:
        """Handlers for the block. Before :attr:`loop` is set (the run not started), a signal stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # one handler decides: this one

        def handle(signum: int, frame: FrameType | None) -> None:
            self.last = signum
            if self.finishing and self.signum is None and self.late is None:  # trials over: let the last step end
                self.late = signum
                log.warning("signal %d: the trials are done; finishing the search's last step (send it again to "
                            "stop at once)", signum)
                return
            if self.signum is not None or self.loop is None:
                log.warning("second signal %d: stopping at once (the search stays resumable)", signum)
                raise KeyboardInterrupt
            self.signum = signum
            self.loop.state.stop_reason = "interrupted"  # the loop proposes no new trial
            log.warning("signal %d: no new trials; recording the trials in flight as interrupted (send it again "
                        "to stop at once)", signum)
            tune_handler = signal.getsignal(_BACKEND_STOP) if _BACKEND_STOP is not None else None
            if callable(tune_handler):
                logging.getLogger("ray.tune.tune").setLevel(logging.ERROR)  # its "Tuner.restore" advice is not ours
                tune_handler(signum, frame)  # ends the backend's run loop; it restores this handler for SIGINT

        for s in previous:
            signal.signal(s, handle)
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            if env is None:
                os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
            else:
                os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = env
