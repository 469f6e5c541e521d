"""Where the search loop writes what happened: MLflow for a real search, memory for a tabular benchmark.

:class:`Sink` is the part of :class:`nas.tracking.tracker.SearchTracker` the loop uses; :class:`MemorySink`
keeps everything in lists instead (``nas bench``, tests), so the loop runs without MLflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from nas.training.records import TrialRecord


class Sink(Protocol):
    """What the loop records to. ``defer`` runs ``fn(*args)`` later, off the driver's critical path (or now)."""

    run_id: str | None

    def defer(self, fn: Callable[..., Any], *args: Any) -> None: ...
    def start_trial(self, rec: TrialRecord) -> None: ...
    def log_epoch(self, number: int, metrics: Mapping[str, float]) -> None: ...
    def log_trial(self, rec: TrialRecord) -> None: ...
    def log_progress(self, step: int, metrics: Mapping[str, float]) -> None: ...
    def log_artifacts(self, files: Mapping[str, str | bytes], tags: Mapping[str, Any] | None = None) -> None: ...


class MemorySink:
    """A :class:`Sink` that keeps the trials, the progress metrics and the latest artifacts and tags in memory;
    deferred calls run at once."""

    def __init__(self, run_id: str = "") -> None:
        self.run_id: str | None = run_id
        self.trials: list[TrialRecord] = []
        self.progress: list[tuple[int, dict[str, float]]] = []
        self.files: dict[str, str | bytes] = {}
        self.tags: dict[str, Any] = {}

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        fn(*args)

    def start_trial(self, rec: TrialRecord) -> None:
        """Nothing to show live in memory: the trial is kept when it ends."""

    def log_epoch(self, number: int, metrics: Mapping[str, float]) -> None:
        """Per-epoch values stay on the trial's record; nothing more to keep."""

    def log_trial(self, rec: TrialRecord) -> None:
        self.trials.append(rec)

    def log_progress(self, step: int, metrics: Mapping[str, float]) -> None:
        self.progress.append((step, dict(metrics)))

    def log_artifacts(self, files: Mapping[str, str | bytes], tags: Mapping[str, Any] | None = None) -> None:
        self.files.update(files)
        self.tags.update(tags or {})
