"""Plain records that cross module boundaries (runner -> search -> tracking/ledger): dicts and dataclasses only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TrialStatus = Literal["complete", "failed"]


@dataclass
class TrialRecord:
    """One trained (or failed) trial as the search saw it.

    ``metrics`` are final values (``val_accuracy`` in [0, 1], ``mflops``, ``params``, ``latency_ms``,
    ``train_flops``, ``train_seconds`` ...); ``history`` one dict per epoch; times are ``time.time()`` seconds.
    """

    number: int
    params: dict[str, Any]
    training: dict[str, Any]
    profile: dict[str, Any]
    status: TrialStatus = "complete"
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    start_time: float = 0.0
    end_time: float = 0.0
    checkpoint_dir: str | None = None
    run_id: str | None = None
    pareto: bool = False

    def row(self) -> dict[str, Any]:
        """A flat row for Pareto queries and tables: trial number, status and every metric."""
        return {"trial": self.number, "status": self.status, **self.metrics}
